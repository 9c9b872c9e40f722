import PortalRPC
import PortalStorage

extension PageTokenScope {
    /// A scope for `list` (e.g. `activations`) and the request that names the organization, filters
    /// and order; the caller clears its page token and page size first, so pages of one query share it.
    public init(_ keys: PageTokenKeys, list: String, request: some RPCMessage) {
        self.init(keys, list: list, request: request.rpcBytes())
    }
}

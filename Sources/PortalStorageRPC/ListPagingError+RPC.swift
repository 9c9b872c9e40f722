import PortalRPC
import PortalStorage

extension ListPagingError: RPCErrorConvertible {
    /// `INVALID_ARGUMENT` naming the request field at fault.
    public var rpcError: RPCError { .invalidArgument(field: field, problem) }
}

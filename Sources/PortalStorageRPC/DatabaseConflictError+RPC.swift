import PortalRPC
import PortalStorage

extension DatabaseConflictError: RPCErrorConvertible {
    /// `ABORTED`: concurrent changes kept colliding with this one; nothing was changed, so it may be retried.
    public var rpcError: RPCError {
        RPCError(.aborted, "the change collided with concurrent changes; nothing was changed, try again", cause: self)
    }
}

import PortalRPC
import PortalStorage

extension DatabaseUnavailableError: RPCErrorConvertible {
    /// `UNAVAILABLE`: the call may be retried (with the same idempotency key) once the database is back.
    public var rpcError: RPCError { RPCError(.unavailable, "the database is unavailable; try again", cause: self) }
}

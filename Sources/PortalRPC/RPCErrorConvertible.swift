/// An error that names the status a client receives for it.
///
/// Services throw domain errors from their stores (an activation over the available licenses, an
/// invite already used); each service states, beside its handlers, the status and message each one
/// answers with. The call executor converts them as a handler's error leaves it.
public protocol RPCErrorConvertible: Error {
    /// The status the client receives.
    var rpcError: RPCError { get }
}

extension RPCError: RPCErrorConvertible {
    /// Itself.
    public var rpcError: RPCError { self }
}

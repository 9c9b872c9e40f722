/// One RPC method as its descriptor declares it.
public struct ProtoJSONMethod: Sendable {
    /// The HTTP/2 path of the method, `/package.Service/Method`.
    public let path: String
    /// The fully qualified request message type, without a leading dot.
    public let inputType: String
    /// The fully qualified response message type, without a leading dot.
    public let outputType: String
    /// Whether the client sends a stream of requests.
    public let clientStreaming: Bool
    /// Whether the server sends a stream of responses.
    public let serverStreaming: Bool
    /// Whether the method declares `idempotency_level = NO_SIDE_EFFECTS`.
    public let hasNoSideEffects: Bool
}

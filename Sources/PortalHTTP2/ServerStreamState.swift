/// One gRPC call's stream on the server, decided apart from I/O: events in, what to send out.
///
/// The request side receives until the peer's END_STREAM; the response side goes from nothing sent,
/// to headers sent (a message is on its way), to ended (trailers queued or a trailers-only response
/// sent). Once the stream is closed (finished, reset, or the connection gone) nothing more is sent.
struct ServerStreamState {
    /// What of the response has been sent.
    enum Response: Equatable {
        /// Nothing yet.
        case idle
        /// The response headers; messages may follow.
        case headersSent
        /// The end of the call (trailers, or a trailers-only response).
        case ended
    }

    /// How to send a response message.
    enum MessageAction: Equatable {
        /// Send the response headers, then the message.
        case sendHeadersAndMessage
        /// Queue the message behind those already sent.
        case sendMessage
        /// The call is over: drop the message.
        case drop
    }

    /// How to end the call.
    enum EndAction: Equatable {
        /// Headers and trailers in one block: no message was sent and none is left.
        case trailersOnly
        /// Headers, the queued messages, then trailers.
        case headersMessagesAndTrailers
        /// The queued messages, then trailers (the headers are out).
        case messagesAndTrailers
        /// Already ended or closed: nothing.
        case none
    }

    private(set) var requestComplete = false
    private(set) var response = Response.idle
    private(set) var closed = false

    /// The peer finished sending; false when it had already (a repeated END_STREAM is ignored).
    mutating func requestEnded() -> Bool {
        guard !requestComplete else { return false }
        requestComplete = true
        return true
    }

    /// Whether request DATA is still taken (not once the response ended or the stream closed).
    var takesRequestData: Bool {
        response != .ended && !closed
    }

    /// The handler sent a response message.
    mutating func responseMessage() -> MessageAction {
        guard response != .ended, !closed else { return .drop }
        if response == .idle {
            response = .headersSent
            return .sendHeadersAndMessage
        }
        return .sendMessage
    }

    /// The call ends (the handler returned, or the transport ended it); `hasMessages` when response
    /// messages are still to go.
    mutating func end(hasMessages: Bool) -> EndAction {
        guard response != .ended, !closed else { return .none }
        defer { response = .ended }
        switch response {
        case .idle: return hasMessages ? .headersMessagesAndTrailers : .trailersOnly
        case .headersSent: return .messagesAndTrailers
        case .ended: return .none
        }
    }

    /// The stream closed. Returns whether the call was still going (the client cancelled it).
    mutating func streamClosed() -> Bool {
        guard !closed else { return false }
        closed = true
        return response != .ended
    }
}

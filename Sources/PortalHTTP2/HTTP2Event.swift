/// What an HTTP/2 session reported, handled after nghttp2 has returned.
///
/// `NGHTTP2Session` records these while nghttp2 parses input or writes frames; the connection reads
/// them once the C call is over, so no work runs inside an nghttp2 callback and nothing re-enters it.
/// Header fields and DATA bytes are ranges into the session's buffers, valid until the events are cleared.
enum HTTP2Event: Equatable {
    /// A complete HEADERS block (request or response headers, or trailers); `endStream` when the
    /// peer also finished sending.
    case headers(streamID: Int32, fields: Range<Int>, endStream: Bool)
    /// Payload bytes of a DATA frame.
    case data(streamID: Int32, bytes: Range<Int>)
    /// The peer finished sending with a DATA frame's END_STREAM.
    case endOfData(streamID: Int32)
    /// The peer reset the stream with RST_STREAM.
    case reset(streamID: Int32)
    /// The stream closed; `errorCode` is 0 for a clean close.
    case closed(streamID: Int32, errorCode: UInt32)
    /// The peer sent GOAWAY.
    case goAway(lastStreamID: Int32, errorCode: UInt32)
    /// The peer acknowledged our PING.
    case pingAcknowledged
    /// `count` queued body bytes of `streamID` went into frames (for streams that asked to hear of it).
    case sent(streamID: Int32, count: Int)
}

import CNGHTTP2
import NIOCore

/// What an HTTP/2 session reports while it parses input; implemented by the connection handlers.
///
/// Calls arrive on the connection's event loop, from inside `NGHTTP2Session.receive`. A delegate may
/// submit frames (responses, trailers, resets) but must not call `receive` or `drainOutput` from here.
protocol HTTP2SessionDelegate: AnyObject {
    /// A HEADERS block starts on `streamID` (request headers, response headers or trailers).
    func sessionBeganHeaders(streamID: Int32)
    /// One header field of the current block (bytes valid only during the call); return false to
    /// reset the stream (too many or too large).
    func sessionReceivedHeader(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool
    /// A HEADERS block is complete; `endStream` when the peer also finished sending.
    func sessionReceivedHeaders(streamID: Int32, endStream: Bool)
    /// Payload bytes of a DATA frame; only valid during the call.
    func sessionReceivedData(streamID: Int32, bytes: UnsafeRawBufferPointer)
    /// The peer finished sending on `streamID` with a DATA frame's END_STREAM.
    func sessionReceivedEndOfData(streamID: Int32)
    /// The stream closed; `errorCode` is 0 for a clean close.
    func sessionClosedStream(streamID: Int32, errorCode: UInt32)
    /// The peer reset a stream with RST_STREAM.
    func sessionReceivedReset(streamID: Int32)
    /// The peer sent GOAWAY.
    func sessionReceivedGoAway(lastStreamID: Int32, errorCode: UInt32)
    /// nghttp2 wants up to `capacity` body bytes for `streamID`.
    func sessionReadBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2BodyRead
}

/// The answer to `sessionReadBody`.
enum HTTP2BodyRead {
    /// `count` bytes were copied; nothing more is ready yet unless `nghttp2` asks again.
    case bytes(Int)
    /// No bytes are ready; the stream waits until `resumeBody` is called.
    case deferred
    /// The last `count` bytes; the stream ends with these trailers.
    case endWithTrailers(Int, [(String, String)])
}

/// Settings and abuse limits for one HTTP/2 connection.
public struct HTTP2Limits: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS announced to the peer.
    public var maxConcurrentStreams: UInt32 = 100
    /// SETTINGS_INITIAL_WINDOW_SIZE: how many bytes a peer may send on one stream before we consume them.
    public var initialWindowSize: UInt32 = 1 << 20
    /// The connection-level receive window.
    public var connectionWindowSize: Int32 = 16 << 20
    /// SETTINGS_MAX_FRAME_SIZE.
    public var maxFrameSize: UInt32 = 16_384
    /// SETTINGS_MAX_HEADER_LIST_SIZE, enforced on received header blocks too.
    public var maxHeaderListSize: UInt32 = 16_384
    /// Stream resets a peer may send in a burst before the connection is closed (rapid reset).
    public var streamResetBurst: UInt64 = 1_000
    /// Stream resets per second a peer may sustain after the burst.
    public var streamResetRate: UInt64 = 33
    /// Queued PING/SETTINGS acknowledgements before the connection is closed (ack floods).
    public var maxOutboundAcks: Int = 1_000
    /// Settings entries accepted in one SETTINGS frame.
    public var maxSettingsEntries: Int = 32
    /// CONTINUATION frames accepted for one header block.
    public var maxContinuations: Int = 8

    /// The defaults above.
    public init() {}
}

/// Owns one nghttp2 session and drives it in memory: bytes in from the socket, frames out to it.
///
/// Confined to its connection's event loop: it is neither `Sendable` nor re-entrant, and a guard
/// traps programmer errors that would re-enter nghttp2 from inside one of its callbacks.
final class NGHTTP2Session {
    /// Which side of the connection this session is.
    enum Role { case server, client }

    private var session: OpaquePointer!
    private unowned(unsafe) let delegate: any HTTP2SessionDelegate
    private var insideLibrary = false

    init(role: Role, limits: HTTP2Limits, delegate: any HTTP2SessionDelegate) {
        self.delegate = delegate
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.install(callbacks)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        // The connection handler enforces `streamResetBurst`/`streamResetRate` itself so it can answer
        // with ENHANCE_YOUR_CALM; nghttp2's own limiter (which answers INTERNAL_ERROR) is a backstop.
        nghttp2_option_set_stream_reset_rate_limit(option, limits.streamResetBurst * 4, limits.streamResetRate * 4)
        nghttp2_option_set_max_outbound_ack(option, limits.maxOutboundAcks)
        nghttp2_option_set_max_settings(option, limits.maxSettingsEntries)
        nghttp2_option_set_max_continuations(option, limits.maxContinuations)
        nghttp2_option_set_max_send_header_block_length(option, 64 << 10)
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096)

        let userData = Unmanaged.passUnretained(self).toOpaque()
        let result = role == .server
            ? nghttp2_session_server_new2(&session, callbacks, userData, option)
            : nghttp2_session_client_new2(&session, callbacks, userData, option)
        precondition(result == 0 && session != nil, "nghttp2 session allocation failed")

        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: limits.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: limits.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: limits.maxFrameSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: limits.maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        if role == .client { settings.removeFirst() }
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, limits.connectionWindowSize)
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: Input and output

    /// Parses bytes from the peer; false when the connection must close (protocol error or abuse).
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty else { return true }
        enter()
        defer { leave() }
        let consumed = nghttp2_session_mem_recv(session, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
        return consumed >= 0
    }

    /// Appends every frame nghttp2 has ready to `buffer`; false on a fatal session error.
    func drainOutput(into buffer: inout ByteBuffer) -> Bool {
        enter()
        defer { leave() }
        while true {
            var pointer: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &pointer)
            if count < 0 { return false }
            if count == 0 { return true }
            buffer.writeBytes(UnsafeRawBufferPointer(start: pointer, count: count))
        }
    }

    /// Whether the session still wants to exchange frames; false once both sides are done (after GOAWAY).
    var isAlive: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    // MARK: Submitting frames

    /// Submits response headers; with `hasBody` the body is pulled through `sessionReadBody`.
    func submitResponse(streamID: Int32, headers: [(String, String)], hasBody: Bool) {
        Self.withHeaderBlock(headers) { nva, count in
            if hasBody {
                var provider = Self.bodyProvider
                _ = nghttp2_submit_response(session, streamID, nva, count, &provider)
            } else {
                _ = nghttp2_submit_response(session, streamID, nva, count, nil)
            }
        }
    }

    /// Submits a request; its body is pulled through `sessionReadBody`. Returns the stream id, or nil when refused.
    func submitRequest(headers: [(String, String)]) -> Int32? {
        Self.withHeaderBlock(headers) { nva, count in
            var provider = Self.bodyProvider
            let streamID = nghttp2_submit_request(session, nil, nva, count, &provider, nil)
            return streamID > 0 ? streamID : nil
        }
    }

    /// Tells nghttp2 that a deferred stream has body bytes (or its end) ready again.
    func resumeBody(streamID: Int32) {
        _ = nghttp2_session_resume_data(session, streamID)
    }

    /// Resets a stream with an HTTP/2 error code (CANCEL = 8, INTERNAL_ERROR = 2, ...).
    func resetStream(streamID: Int32, errorCode: UInt32) {
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Announces a graceful shutdown: a GOAWAY with the largest stream id, so in-flight streams continue.
    func submitShutdownNotice() {
        _ = nghttp2_submit_shutdown_notice(session)
    }

    /// Sends the final GOAWAY naming the last stream that will be processed.
    func submitGoAway(errorCode: UInt32 = 0) {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0)
    }

    /// Returns `count` received body bytes of `streamID` to the peer's send window.
    func consumeStream(streamID: Int32, count: Int) {
        guard count > 0 else { return }
        _ = nghttp2_session_consume_stream(session, streamID, count)
    }

    /// Returns `count` received bytes to the peer's connection-level send window.
    func consumeConnection(count: Int) {
        guard count > 0 else { return }
        _ = nghttp2_session_consume_connection(session, count)
    }

    // MARK: Internals

    private func enter() {
        precondition(!insideLibrary, "re-entrant call into nghttp2")
        insideLibrary = true
    }

    private func leave() { insideLibrary = false }

    private static func from(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session {
        Unmanaged<NGHTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    private static var bodyProvider: nghttp2_data_provider {
        nghttp2_data_provider(source: nghttp2_data_source(ptr: nil)) { _, streamID, buffer, length, flags, _, userData in
            let session = NGHTTP2Session.from(userData)
            switch session.delegate.sessionReadBody(streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length)) {
            case .bytes(let count):
                return count
            case .deferred:
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            case .endWithTrailers(let count, let trailers):
                flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
                if !trailers.isEmpty {
                    flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
                    let result = NGHTTP2Session.withHeaderBlock(trailers) { nva, n in nghttp2_submit_trailer(session.session, streamID, nva, n) }
                    if result != 0 { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
                }
                return count
            }
        }
    }

    /// Runs `body` with an nghttp2 header array whose bytes live for the duration of the call.
    private static func withHeaderBlock<Result>(_ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> Result) -> Result {
        var storage: [UInt8] = []
        var offsets: [(Int, Int, Int, Int)] = []
        offsets.reserveCapacity(headers.count)
        for (name, value) in headers {
            let nameStart = storage.count
            storage.append(contentsOf: name.utf8)
            let valueStart = storage.count
            storage.append(contentsOf: value.utf8)
            offsets.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart))
        }
        storage.append(0)
        return storage.withUnsafeMutableBufferPointer { bytes in
            let base = bytes.baseAddress!
            let nva = offsets.map { nameStart, nameLength, valueStart, valueLength in
                nghttp2_nv(name: base + nameStart, value: base + valueStart, namelen: nameLength, valuelen: valueLength,
                           flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    private static func install(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            let frame = frame!.pointee
            if frame.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) {
                NGHTTP2Session.from(userData).delegate.sessionBeganHeaders(streamID: frame.hd.stream_id)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            let streamID = frame!.pointee.hd.stream_id
            let name = UnsafeRawBufferPointer(start: name, count: nameLength)
            let value = UnsafeRawBufferPointer(start: value, count: valueLength)
            let accepted = NGHTTP2Session.from(userData).delegate.sessionReceivedHeader(streamID: streamID, name: name, value: value)
            return accepted ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            let frame = frame!.pointee
            let delegate = NGHTTP2Session.from(userData).delegate
            let endStream = frame.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            switch UInt32(frame.hd.type) {
            case NGHTTP2_HEADERS.rawValue:
                delegate.sessionReceivedHeaders(streamID: frame.hd.stream_id, endStream: endStream)
            case NGHTTP2_DATA.rawValue where endStream:
                delegate.sessionReceivedEndOfData(streamID: frame.hd.stream_id)
            case NGHTTP2_RST_STREAM.rawValue:
                delegate.sessionReceivedReset(streamID: frame.hd.stream_id)
            case NGHTTP2_GOAWAY.rawValue:
                delegate.sessionReceivedGoAway(lastStreamID: frame.goaway.last_stream_id, errorCode: frame.goaway.error_code)
            default:
                break
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            NGHTTP2Session.from(userData).delegate.sessionReceivedData(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            NGHTTP2Session.from(userData).delegate.sessionClosedStream(streamID: streamID, errorCode: errorCode)
            return 0
        }
    }
}

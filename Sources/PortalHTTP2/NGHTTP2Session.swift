internal import CNGHTTP2
import NIOCore

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
/// nghttp2's callbacks only record what happened (`events`) and copy the bytes they point at; the
/// connection handles the events once `receive` or `send` has returned, so no work runs inside the
/// library and nothing re-enters it. Body bytes wait in a queue per stream, which nghttp2 reads as it
/// writes DATA frames. Confined to its connection's event loop: neither `Sendable` nor re-entrant.
///
/// Its mutable state is `@exclusivity(unchecked)`: touched on one thread by methods that never hold
/// an access across a call back into the session, and checked at run time it cost 3% of a unary
/// call's time (every header field updates several of these fields).
final class NGHTTP2Session {
    /// Which side of the connection this session is.
    enum Role { case server, client }

    /// What the session reported since the events were last cleared, in order.
    @exclusivity(unchecked) private(set) var events: [HTTP2Event] = []

    @exclusivity(unchecked) private var session: OpaquePointer!
    private let maxHeaderListSize: Int
    @exclusivity(unchecked) private var insideLibrary = false
    /// Header names and values of the blocks in `events`, as (name start, name count, value start, value count).
    @exclusivity(unchecked) private var headerFields: [(Int, Int, Int, Int)] = []
    @exclusivity(unchecked) private var headerBytes: [UInt8] = []
    @exclusivity(unchecked) private var dataBytes: [UInt8] = []
    /// The header block being received: where its fields start and its size as HTTP/2 counts it.
    @exclusivity(unchecked) private var blockStart = 0
    @exclusivity(unchecked) private var blockSize = 0
    @exclusivity(unchecked) private var blockOpen = false
    /// Bytes of DATA received in this call, returned to the connection window once it is over.
    @exclusivity(unchecked) private var receivedDataBytes = 0
    /// Body bytes waiting for DATA frames, by stream.
    @exclusivity(unchecked) private var bodies = StreamTable<StreamBody>()
    /// Reused storage for header blocks handed to nghttp2 (which copies them).
    @exclusivity(unchecked) private var scratchBytes: [UInt8] = []
    @exclusivity(unchecked) private var scratchFields: [nghttp2_nv] = []

    /// One stream's outgoing body: queued bytes, and how it ends once they are sent.
    private struct StreamBody {
        var queue = OutboundQueue()
        /// Every part is queued: end the stream once they are out (with trailers, when any).
        var ended = false
        var trailers: [(String, String)] = []
        /// Report `.sent` events for this stream.
        var reportsProgress: Bool
    }

    init(role: Role, limits: HTTP2Limits) {
        maxHeaderListSize = Int(limits.maxHeaderListSize)
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.install(callbacks)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        // The connection enforces `streamResetBurst`/`streamResetRate` itself so it can answer
        // with ENHANCE_YOUR_CALM; nghttp2's own limiter (which answers INTERNAL_ERROR) is a backstop.
        nghttp2_option_set_stream_reset_rate_limit(option, limits.streamResetBurst * 4, limits.streamResetRate * 4)
        nghttp2_option_set_max_outbound_ack(option, limits.maxOutboundAcks)
        nghttp2_option_set_max_settings(option, limits.maxSettingsEntries)
        nghttp2_option_set_max_continuations(option, limits.maxContinuations)
        nghttp2_option_set_max_send_header_block_length(option, 64 << 10)
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096)

        let userData = Unmanaged.passUnretained(self).toOpaque()
        let result =
            role == .server
            ? nghttp2_session_server_new2(&session, callbacks, userData, option)
            : nghttp2_session_client_new2(&session, callbacks, userData, option)
        precondition(result == 0 && session != nil, "nghttp2 session allocation failed")

        var settings = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: limits.maxConcurrentStreams
            ),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: limits.initialWindowSize),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: limits.maxFrameSize),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: limits.maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        if role == .client { settings.removeFirst() }
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, limits.connectionWindowSize)
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: Input and output

    /// Parses bytes from the peer, recording events; false when the connection must close (protocol
    /// error or abuse). DATA received goes back to the connection's window at once: flow control
    /// that matters is per stream.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty else { return true }
        enter()
        let consumed = nghttp2_session_mem_recv(
            session, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
        leave()
        if receivedDataBytes > 0 {
            _ = nghttp2_session_consume_connection(session, receivedDataBytes)
            receivedDataBytes = 0
        }
        return consumed >= 0
    }

    /// Appends every frame nghttp2 has ready to `buffer`, recording `.sent` events; false on a fatal session error.
    func send(into buffer: inout ByteBuffer) -> Bool {
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

    /// Whether nghttp2 has frames to write.
    var wantsToWrite: Bool {
        nghttp2_session_want_write(session) != 0
    }

    /// Forgets the recorded events and the bytes they point at, keeping the fields of a header block
    /// still arriving (its CONTINUATION frames can come in a later read).
    func clearEvents() {
        events.removeAll(keepingCapacity: true)
        dataBytes.removeAll(keepingCapacity: true)
        guard blockOpen, blockStart < headerFields.count else {
            headerFields.removeAll(keepingCapacity: true)
            headerBytes.removeAll(keepingCapacity: true)
            blockStart = 0
            return
        }
        let kept = headerFields[blockStart...]
        let byteStart = kept.first!.0
        headerBytes.removeSubrange(0..<byteStart)
        headerFields = kept.map { ($0.0 - byteStart, $0.1, $0.2 - byteStart, $0.3) }
        blockStart = 0
    }

    /// Calls `body` with each header field of a `.headers` event, in order.
    func forEachHeaderField(
        in fields: Range<Int>, _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void
    ) {
        headerBytes.withUnsafeBytes { bytes in
            for index in fields {
                let (nameStart, nameCount, valueStart, valueCount) = headerFields[index]
                body(
                    UnsafeRawBufferPointer(rebasing: bytes[nameStart..<(nameStart + nameCount)]),
                    UnsafeRawBufferPointer(rebasing: bytes[valueStart..<(valueStart + valueCount)]))
            }
        }
    }

    /// Runs `body` with the payload bytes of a `.data` event.
    func withData<Result>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try dataBytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    // MARK: Submitting frames

    /// Submits response headers; with `hasBody` the body follows from the stream's queue
    /// (`enqueue`, `endBody`), else the headers end the stream (a trailers-only response).
    func submitResponse(streamID: Int32, headers: [(String, String)], hasBody: Bool, reportsProgress: Bool = false) {
        if hasBody {
            bodies.update(streamID, orAdd: StreamBody(reportsProgress: reportsProgress)) { body in
                if reportsProgress { body.reportsProgress = true }
            }
            withHeaderBlock(headers) { nva, count in
                var provider = Self.bodyProvider
                _ = nghttp2_submit_response(session, streamID, nva, count, &provider)
            }
        } else {
            withHeaderBlock(headers) { nva, count in
                _ = nghttp2_submit_response(session, streamID, nva, count, nil)
            }
        }
    }

    /// Submits a request whose body follows from the stream's queue. Returns the stream id, or nil when refused.
    func submitRequest(headers: [(String, String)]) -> Int32? {
        let streamID = withHeaderBlock(headers) { nva, count in
            var provider = Self.bodyProvider
            return nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
        guard streamID > 0 else { return nil }
        bodies[streamID] = StreamBody(reportsProgress: true)
        return streamID
    }

    /// Queues a gRPC message on a stream's body (framed) or plain bytes (not framed).
    func enqueue(_ bytes: [UInt8], framed: Bool, on streamID: Int32) {
        bodies.update(streamID, orAdd: StreamBody(reportsProgress: false)) { body in
            if framed {
                body.queue.appendMessage(bytes)
            } else {
                body.queue.appendBytes(bytes)
            }
        }
        _ = nghttp2_session_resume_data(session, streamID)
    }

    /// Ends a stream's body once its queue is sent, with `trailers` when there are any.
    func endBody(on streamID: Int32, trailers: [(String, String)] = []) {
        bodies.update(streamID, orAdd: StreamBody(reportsProgress: false)) { body in
            body.ended = true
            body.trailers = trailers
        }
        _ = nghttp2_session_resume_data(session, streamID)
    }

    /// Bytes queued on a stream's body and not yet in frames.
    func queuedBodyBytes(on streamID: Int32) -> Int {
        bodies[streamID]?.queue.count ?? 0
    }

    /// Resets a stream with an HTTP/2 error code (CANCEL = 8, INTERNAL_ERROR = 2, ...).
    func resetStream(streamID: Int32, errorCode: UInt32) {
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Announces a graceful shutdown: a GOAWAY with the largest stream id, so streams in flight continue.
    func submitShutdownNotice() {
        _ = nghttp2_submit_shutdown_notice(session)
    }

    /// Sends a PING; its acknowledgement comes back as `.pingAcknowledged`.
    func submitPing() {
        _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
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

    // MARK: Internals

    private func enter() {
        precondition(!insideLibrary, "re-entrant call into nghttp2")
        insideLibrary = true
    }

    private func leave() { insideLibrary = false }

    private static func from(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session {
        Unmanaged<NGHTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    /// Copies up to `buffer.count` queued bytes of `streamID` for a DATA frame, with how the stream goes on.
    private func readBody(
        streamID: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let (count, body) = bodies.update(streamID, { ($0.queue.read(into: buffer), $0) }) else {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return 0
        }
        if count > 0, body.reportsProgress { events.append(.sent(streamID: streamID, count: count)) }
        guard body.queue.count == 0, body.ended else {
            return count > 0 ? count : Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
        if !body.trailers.isEmpty {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
            let result = withHeaderBlock(body.trailers) { nva, n in nghttp2_submit_trailer(session, streamID, nva, n) }
            if result != 0 { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
        }
        return count
    }

    private static var bodyProvider: nghttp2_data_provider {
        nghttp2_data_provider(source: nghttp2_data_source(ptr: nil)) {
            _, streamID, buffer, length, flags, _, userData in
            NGHTTP2Session.from(userData).readBody(
                streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length), flags: flags!)
        }
    }

    /// Runs `body` with an nghttp2 header array whose bytes live for the duration of the call; the
    /// storage is kept for the next block, since nghttp2 copies what it is given.
    private func withHeaderBlock<Result>(
        _ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> Result
    ) -> Result {
        var storage = scratchBytes
        var fields = scratchFields
        scratchBytes = []
        scratchFields = []
        defer {
            storage.removeAll(keepingCapacity: true)
            fields.removeAll(keepingCapacity: true)
            scratchBytes = storage
            scratchFields = fields
        }
        for (name, value) in headers {
            storage.append(contentsOf: name.utf8)
            storage.append(contentsOf: value.utf8)
        }
        storage.append(0)
        return storage.withUnsafeMutableBufferPointer { bytes in
            var position = bytes.baseAddress!
            for (name, value) in headers {
                let nameCount = name.utf8.count
                let valueCount = value.utf8.count
                // A request id is new on every response: indexing it would only churn HPACK's dynamic tables.
                let flags = name == "x-request-id" ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE
                fields.append(
                    nghttp2_nv(
                        name: position, value: position + nameCount, namelen: nameCount, valuelen: valueCount,
                        flags: UInt8(flags.rawValue)))
                position += nameCount + valueCount
            }
            return fields.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    // MARK: Callbacks: record, copy, return

    private func beganHeaders() {
        blockStart = headerFields.count
        blockSize = 0
        blockOpen = true
    }

    private func receivedHeaderField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        blockSize += name.count + value.count + 32
        guard blockSize <= maxHeaderListSize else { return false }
        let nameStart = headerBytes.count
        headerBytes.append(contentsOf: name)
        headerBytes.append(contentsOf: value)
        headerFields.append((nameStart, name.count, nameStart + name.count, value.count))
        return true
    }

    private func receivedData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        receivedDataBytes += bytes.count
        let start = dataBytes.count
        dataBytes.append(contentsOf: bytes)
        events.append(.data(streamID: streamID, bytes: start..<dataBytes.count))
    }

    private func receivedFrame(_ frame: nghttp2_frame) {
        let endStream = frame.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(frame.hd.type) {
        case NGHTTP2_HEADERS.rawValue:
            blockOpen = false
            events.append(
                .headers(streamID: frame.hd.stream_id, fields: blockStart..<headerFields.count, endStream: endStream))
        case NGHTTP2_DATA.rawValue where endStream:
            events.append(.endOfData(streamID: frame.hd.stream_id))
        case NGHTTP2_RST_STREAM.rawValue:
            events.append(.reset(streamID: frame.hd.stream_id))
        case NGHTTP2_GOAWAY.rawValue:
            events.append(.goAway(lastStreamID: frame.goaway.last_stream_id, errorCode: frame.goaway.error_code))
        case NGHTTP2_PING.rawValue where frame.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0:
            events.append(.pingAcknowledged)
        default:
            break
        }
    }

    private func closedStream(_ streamID: Int32, errorCode: UInt32) {
        bodies[streamID] = nil
        events.append(.closed(streamID: streamID, errorCode: errorCode))
    }

    private static func install(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            if frame!.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) {
                NGHTTP2Session.from(userData).beganHeaders()
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, _, name, nameLength, value, valueLength, _, userData in
            let accepted = NGHTTP2Session.from(userData).receivedHeaderField(
                name: UnsafeRawBufferPointer(start: name, count: nameLength),
                value: UnsafeRawBufferPointer(start: value, count: valueLength))
            return accepted ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            NGHTTP2Session.from(userData).receivedFrame(frame!.pointee)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            NGHTTP2Session.from(userData).receivedData(
                streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            NGHTTP2Session.from(userData).closedStream(streamID, errorCode: errorCode)
            return 0
        }
    }
}

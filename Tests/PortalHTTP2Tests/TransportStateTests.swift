import NIOCore
import NIOEmbedded
import Testing

@testable import PortalHTTP2

@Suite("Connection lifecycle")
struct ConnectionLifecycleTests {
    let start = ContinuousClock.now

    @Test func gracefulShutdownAnnouncesThenSendsTheFinalGoAwayOnceThePingComesBack() {
        var lifecycle = ConnectionLifecycle(resetBurst: 10, resetRate: 1, now: start)
        #expect(lifecycle.beginGracefulShutdown() == .announceShutdown)
        #expect(lifecycle.state == .quiescing)
        #expect(lifecycle.acceptsStreams, "a request sent before the peer saw the notice is still served")
        #expect(lifecycle.beginGracefulShutdown() == .none, "shutdown begins once")
        #expect(lifecycle.streamEnded(openStreams: 0) == .none, "no close before the final GOAWAY")
        #expect(lifecycle.shutdownPingAnswered(openStreams: 2) == .goAway(errorCode: 0))
        #expect(lifecycle.state == .closing)
        #expect(!lifecycle.acceptsStreams)
        #expect(lifecycle.shutdownPingAnswered(openStreams: 2) == .none, "a late second answer changes nothing")
        #expect(lifecycle.streamEnded(openStreams: 1) == .none)
        #expect(lifecycle.streamEnded(openStreams: 0) == .close)
        #expect(lifecycle.state == .closed)
    }

    @Test func anIdleConnectionClosesWithTheFinalGoAway() {
        var lifecycle = ConnectionLifecycle(resetBurst: 10, resetRate: 1, now: start)
        _ = lifecycle.beginGracefulShutdown()
        #expect(lifecycle.shutdownPingAnswered(openStreams: 0) == .goAwayAndClose(errorCode: 0))
        #expect(lifecycle.state == .closed)
    }

    @Test func thePeersGoAwayClosesOnceItsStreamsAreDone() {
        var lifecycle = ConnectionLifecycle(resetBurst: 10, resetRate: 1, now: start)
        #expect(lifecycle.peerWentAway(openStreams: 1) == .none)
        #expect(!lifecycle.acceptsStreams)
        #expect(lifecycle.beginGracefulShutdown() == .none)
        #expect(lifecycle.streamEnded(openStreams: 0) == .close)

        var idle = ConnectionLifecycle(resetBurst: 10, resetRate: 1, now: start)
        #expect(idle.peerWentAway(openStreams: 0) == .close)
    }

    @Test func aRapidResetFloodIsAnsweredWithEnhanceYourCalm() {
        var lifecycle = ConnectionLifecycle(resetBurst: 3, resetRate: 1, now: start)
        for _ in 0..<3 { #expect(lifecycle.peerReset(now: start) == .none) }
        #expect(lifecycle.peerReset(now: start) == .goAwayAndClose(errorCode: ConnectionLifecycle.enhanceYourCalm))
        #expect(lifecycle.state == .closed)
        #expect(lifecycle.peerReset(now: start) == .none, "the connection is already ending")
    }

    @Test func resetsWithinTheSustainedRateAreAllowed() {
        var lifecycle = ConnectionLifecycle(resetBurst: 2, resetRate: 10, now: start)
        for second in 0..<50 {
            let now = start + .milliseconds(100 * second)
            #expect(lifecycle.peerReset(now: now) == .none, "reset at \(second * 100) ms")
        }
    }

    @Test func aProtocolErrorClosesOnce() {
        var lifecycle = ConnectionLifecycle(resetBurst: 2, resetRate: 1, now: start)
        #expect(lifecycle.protocolError() == .close)
        #expect(lifecycle.protocolError() == .none)
        #expect(lifecycle.beginGracefulShutdown() == .none)
    }
}

@Suite("Server stream state")
struct ServerStreamStateTests {
    @Test func aUnaryCallWithoutMessagesEndsTrailersOnly() {
        var stream = ServerStreamState()
        let ended = stream.requestEnded()
        let endedAgain = stream.requestEnded()
        #expect(ended)
        #expect(!endedAgain, "a repeated END_STREAM is ignored")
        #expect(stream.end(hasMessages: false) == .trailersOnly)
        #expect(stream.end(hasMessages: false) == .none)
        #expect(!stream.takesRequestData)
        let cancelled = stream.streamClosed()
        #expect(!cancelled, "closing after the end is not a cancellation")
    }

    @Test func aUnaryResponseGoesWithHeadersMessageAndTrailers() {
        var stream = ServerStreamState()
        #expect(stream.end(hasMessages: true) == .headersMessagesAndTrailers)
        #expect(stream.responseMessage() == .drop, "nothing is sent after the end")
    }

    @Test func streamedMessagesSendHeadersOnce() {
        var stream = ServerStreamState()
        #expect(stream.responseMessage() == .sendHeadersAndMessage)
        #expect(stream.responseMessage() == .sendMessage)
        #expect(stream.end(hasMessages: true) == .messagesAndTrailers)
    }

    @Test func aClosedStreamCancelsTheCallAndSendsNothing() {
        var stream = ServerStreamState()
        #expect(stream.responseMessage() == .sendHeadersAndMessage)
        let cancelled = stream.streamClosed()
        let cancelledAgain = stream.streamClosed()
        #expect(cancelled, "closed before the end: the client cancelled")
        #expect(!cancelledAgain)
        #expect(stream.responseMessage() == .drop)
        #expect(stream.end(hasMessages: true) == .none)
        #expect(!stream.takesRequestData)
    }
}

/// The last-stream ids of the GOAWAY frames in raw HTTP/2 bytes (a server's output, after the preface).
func goAwayLastStreamIDs(in bytes: [UInt8]) -> [Int32] {
    var ids: [Int32] = []
    var index = 0
    while index + 9 <= bytes.count {
        let length = Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
        if bytes[index + 3] == 7, index + 13 <= bytes.count {
            ids.append(
                Int32(bytes[index + 9] & 0x7F) << 24 | Int32(bytes[index + 10]) << 16 | Int32(bytes[index + 11]) << 8
                    | Int32(bytes[index + 12]))
        }
        index += 9 + length
    }
    return ids
}

@Suite("nghttp2 session events")
struct NGHTTP2SessionTests {
    /// Moves every frame `from` has ready into `to`, returning false when `to` refused them.
    @discardableResult
    static func transfer(from: NGHTTP2Session, to: NGHTTP2Session) -> Bool {
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 16)
        #expect(from.send(into: &buffer))
        return buffer.withUnsafeReadableBytes { to.receive($0) }
    }

    static func fields(_ session: NGHTTP2Session, _ range: Range<Int>) -> [String] {
        var fields: [String] = []
        session.forEachHeaderField(in: range) { name, value in
            fields.append(String(decoding: name, as: UTF8.self) + "=" + String(decoding: value, as: UTF8.self))
        }
        return fields
    }

    @Test func aCallTravelsAsEventsBothWays() throws {
        let client = NGHTTP2Session(role: .client, limits: HTTP2Limits())
        let server = NGHTTP2Session(role: .server, limits: HTTP2Limits())
        let headers = [
            (":method", "POST"), (":scheme", "http"), (":path", "/a.B/C"), (":authority", "x"),
            ("content-type", "application/grpc"),
        ]
        let streamID = try #require(client.submitRequest(headers: headers))
        client.enqueue([1, 2, 3], framed: true, on: streamID)
        client.endBody(on: streamID)
        Self.transfer(from: client, to: server)
        #expect(client.events == [.sent(streamID: streamID, count: 8)], "the request body reports its progress")
        client.clearEvents()

        var sawHeaders = false
        var body: [UInt8] = []
        var ended = false
        for event in server.events {
            switch event {
            case .headers(let id, let range, let endStream):
                #expect(id == streamID && !endStream)
                #expect(Self.fields(server, range).contains(":path=/a.B/C"))
                sawHeaders = true
            case .data(let id, let range):
                #expect(id == streamID)
                body += server.withData(range) { Array($0) }
            case .endOfData(let id):
                #expect(id == streamID)
                ended = true
            default:
                break
            }
        }
        #expect(sawHeaders && ended)
        #expect(body == [0, 0, 0, 0, 3, 1, 2, 3])
        server.clearEvents()

        server.submitResponse(
            streamID: streamID, headers: [(":status", "200"), ("content-type", "application/grpc")], hasBody: true)
        server.enqueue([9], framed: true, on: streamID)
        #expect(server.queuedBodyBytes(on: streamID) == 6)
        server.endBody(on: streamID, trailers: [("grpc-status", "0")])
        Self.transfer(from: server, to: client)
        #expect(server.events.contains(.closed(streamID: streamID, errorCode: 0)))
        #expect(
            server.events.allSatisfy { if case .sent = $0 { false } else { true } },
            "a unary response reports no progress")

        let headerBlocks = client.events.compactMap { event -> [String]? in
            if case .headers(_, let range, _) = event { return Self.fields(client, range) }
            return nil
        }
        #expect(headerBlocks == [[":status=200", "content-type=application/grpc"], ["grpc-status=0"]])
        #expect(client.events.last == .closed(streamID: streamID, errorCode: 0))
    }

    @Test func aHeaderBlockArrivingAcrossReadsIsReportedWhole() throws {
        let client = NGHTTP2Session(role: .client, limits: HTTP2Limits())
        let server = NGHTTP2Session(role: .server, limits: HTTP2Limits())
        let headers = [
            (":method", "POST"), (":scheme", "http"), (":path", "/a.B/C"), (":authority", "x"), ("x-one", "1"),
            ("x-two", "2"),
        ]
        let streamID = try #require(client.submitRequest(headers: headers))
        client.endBody(on: streamID)
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 12)
        #expect(client.send(into: &buffer))
        var blocks: [[String]] = []
        for byte in buffer.readableBytesView {
            #expect([byte].withUnsafeBytes { server.receive($0) })
            for case .headers(_, let range, _) in server.events { blocks.append(Self.fields(server, range)) }
            server.clearEvents()
        }
        #expect(blocks == [[":method=POST", ":scheme=http", ":path=/a.B/C", ":authority=x", "x-one=1", "x-two=2"]])
    }

    @Test func anOversizedHeaderBlockResetsItsStreamAndIsNotReported() throws {
        var limits = HTTP2Limits()
        limits.maxHeaderListSize = 200
        let client = NGHTTP2Session(role: .client, limits: HTTP2Limits())
        let server = NGHTTP2Session(role: .server, limits: limits)
        let headers = [
            (":method", "POST"), (":scheme", "http"), (":path", "/a.B/C"), (":authority", "x"),
            ("x-big", String(repeating: "v", count: 300)),
        ]
        let streamID = try #require(client.submitRequest(headers: headers))
        client.endBody(on: streamID)
        Self.transfer(from: client, to: server)
        #expect(!server.events.contains { if case .headers = $0 { true } else { false } })
        Self.transfer(from: server, to: client)
        #expect(
            server.events.contains { if case .closed(streamID, _) = $0 { true } else { false } },
            "closed once the reset is out")
    }

    @Test func shutdownNoticePingAndFinalGoAwayReachThePeer() throws {
        let client = NGHTTP2Session(role: .client, limits: HTTP2Limits())
        let server = NGHTTP2Session(role: .server, limits: HTTP2Limits())
        Self.transfer(from: client, to: server)
        Self.transfer(from: server, to: client)
        client.clearEvents()
        server.clearEvents()
        server.submitShutdownNotice()
        server.submitPing()
        Self.transfer(from: server, to: client)
        #expect(client.events.contains(.goAway(lastStreamID: Int32.max, errorCode: 0)))
        Self.transfer(from: client, to: server)
        #expect(server.events.contains(.pingAcknowledged))
        server.submitGoAway()
        var final = ByteBufferAllocator().buffer(capacity: 1 << 10)
        #expect(server.send(into: &final))
        #expect(goAwayLastStreamIDs(in: Array(final.readableBytesView)) == [0])
        #expect(!server.isAlive, "no stream is open and the final GOAWAY is out")
    }
}

@Suite("Server connection over an embedded channel")
struct ServerConnectionShutdownTests {
    /// A server connection on an embedded channel, and an nghttp2 client session talking to it.
    final class Pair {
        let channel = EmbeddedChannel()
        let client = NGHTTP2Session(role: .client, limits: HTTP2Limits())
        let connection: ServerConnection
        /// Everything the server wrote.
        var written: [UInt8] = []

        init() throws {
            let configuration = ServerConnectionConfiguration(
                routes: [:], services: [], limits: HTTP2Limits(), maxReceiveMessageBytes: 1 << 16)
            connection = ServerConnection(configuration: configuration, transport: .cleartext)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.pipeline.syncOperations.addHandler(connection)
            exchange()
        }

        /// Moves the client's frames to the server and the server's back; returns the client's events.
        @discardableResult
        func exchange() -> [HTTP2Event] {
            client.clearEvents()
            var out = ByteBufferAllocator().buffer(capacity: 1 << 12)
            _ = client.send(into: &out)
            if out.readableBytes > 0 { _ = try? channel.writeInbound(out) }
            channel.embeddedEventLoop.run()
            drain()
            return client.events
        }

        /// Reads what the server wrote into the client.
        func drain() {
            while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
                written += buffer.readableBytesView
                _ = buffer.withUnsafeReadableBytes { client.receive($0) }
            }
        }
    }

    @Test func shutdownSendsANoticeAndAPingThenTheFinalGoAwayAndCloses() throws {
        let pair = try Pair()
        pair.connection.beginGracefulShutdown()
        let announced = pair.exchange()
        #expect(announced.contains(.goAway(lastStreamID: Int32.max, errorCode: 0)), "\(announced)")
        #expect(goAwayLastStreamIDs(in: pair.written) == [Int32.max])
        #expect(pair.channel.isActive, "the connection stays open until the peer answers the PING")
        // The client's PING acknowledgement goes out with its next write.
        pair.exchange()
        #expect(goAwayLastStreamIDs(in: pair.written) == [Int32.max, 0])
        pair.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!pair.channel.isActive, "an idle connection closes after the final GOAWAY")
    }

    @Test func aPeerThatNeverAnswersThePingStillGetsTheFinalGoAway() throws {
        let pair = try Pair()
        pair.connection.beginGracefulShutdown()
        pair.channel.embeddedEventLoop.run()
        pair.drain()
        #expect(goAwayLastStreamIDs(in: pair.written) == [Int32.max])
        pair.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        pair.drain()
        #expect(goAwayLastStreamIDs(in: pair.written) == [Int32.max, 0])
        pair.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!pair.channel.isActive, "the connection closes after the final GOAWAY")
    }
}

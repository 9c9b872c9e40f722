import PortalAPI
import PortalHTTP2
import PortalRPC
import Testing

/// Our client against our server, over real sockets.
@Suite("Calls between the Swift client and server")
struct EchoEndToEndTests {
    typealias Request = Portal_Testing_V1_EchoRequest

    static func request(_ message: String, configure: (inout Request) -> Void = { _ in }) -> Request {
        var request = Request()
        request.message = message
        configure(&request)
        return request
    }

    @Test func unaryCallReturnsTheResponseAndEchoesMetadata() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            var metadata: Metadata = ["x-team": "licensing"]
            metadata.addBinary([0, 255, 7], forKey: "x-trace-bin")
            let response = try await client.get(Self.request("hello") { $0.responseSize = 10 }, metadata: metadata)
            #expect(response.message == "hello")
            #expect(response.payload == Array(repeating: UInt8(ascii: "a"), count: 10))
            #expect(response.seenMetadata == ["x-team": "licensing", "x-trace-bin": "AP8H"])
            await channel.close()
        }
    }

    @Test func streamingCallsDeliverEveryMessageInOrder() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)

            let stream = try await client.expand(
                Self.request("s") {
                    $0.responseCount = 300
                    $0.responseSize = 1000
                })
            var indexes: [Int32] = []
            for try await response in stream { indexes.append(response.index) }
            #expect(indexes == Array(0..<300))

            let collected = try await client.collect { writer in
                for word in ["take", "ownership", "of", "licenses"] { try await writer.write(Self.request(word)) }
            }
            #expect(collected.message == "take ownership of licenses")
            #expect(collected.index == 4)

            let echoed = try await client.update { call in
                var seen: [String] = []
                for word in ["one", "two", "three"] {
                    try await call.send(Self.request(word))
                    seen.append(try #require(try await call.receive()).message)  // Each reply arrives before the next request.
                }
                try await call.finishSending()
                #expect(try await call.receive() == nil)
                return seen
            }
            #expect(echoed == ["one", "two", "three"])
            await channel.close()
        }
    }

    @Test func errorsCarryTheirCodeMessageAndDetails() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            let request = Self.request("café 100% ✓") {
                $0.failWithCode = Int32(RPCStatusCode.failedPrecondition.rawValue)
            }
            let error = try await #require(throws: RPCError.self) { try await client.get(request) }
            #expect(error.code == .failedPrecondition)
            #expect(error.message == "café 100% ✓")
            #expect(error.details.first?.typeURL == "type.googleapis.com/portal.testing.v1.EchoRequest")
            #expect(try Request(serializedBytes: error.details.first!.value) == request)
            await channel.close()
        }
    }

    @Test func aPassedDeadlineCancelsTheHandler() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            let started = ContinuousClock.now
            // A deadline long enough for the handler to start even on a busy test process (a request
            // whose deadline passes before it is read never reaches its handler), a handler that
            // would sleep 30 s: only the deadline's cancellation ends it sooner.
            let call = Task {
                try await client.get(
                    Self.request("slow") { $0.delayMs = 30_000 }, options: CallOptions(timeout: .seconds(2)))
            }
            try await expectEventually(timeout: .seconds(2)) { try await client.stats(.init()).callsActive == 1 }
            let error = try await #require(throws: RPCError.self) { try await call.value }
            #expect(error.code == .deadlineExceeded)
            #expect(ContinuousClock.now - started < .seconds(4))
            try await expectEventually(timeout: .seconds(20)) { try await client.stats(.init()).callsCancelled == 1 }
            #expect(try await client.stats(.init()).callsActive == 0)
            await channel.close()
        }
    }

    @Test func cancellingTheCallerResetsTheStreamAndCancelsTheHandler() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            let call = Task { try await client.get(Self.request("slow") { $0.delayMs = 10_000 }) }
            try await expectEventually { try await client.stats(.init()).callsActive == 1 }
            call.cancel()
            let error = try await #require(throws: RPCError.self) { try await call.value }
            #expect(error.code == .cancelled)
            try await expectEventually { try await client.stats(.init()).callsCancelled == 1 }
            await channel.close()
        }
    }

    @Test func messagesOverTheReceiveLimitAreResourceExhausted() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            let big = Self.request("big") { $0.payload = [UInt8](repeating: 1, count: 3 << 20) }
            #expect(try await client.get(big).payload.count == 3 << 20)
            let tooBig = Self.request("too big") { $0.payload = [UInt8](repeating: 1, count: 5 << 20) }
            let error = try await #require(throws: RPCError.self) { try await client.get(tooBig) }
            #expect(error.code == .resourceExhausted)
            #expect(try await client.get(Self.request("still serving")).message == "still serving")
            await channel.close()
        }
    }

    @Test func unknownMethodsAndServicesAreUnimplemented() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            for method in [
                MethodDescriptor(service: "portal.testing.v1.Echo", method: "Nope", kind: .unary),
                MethodDescriptor(service: "no.such.Service", method: "Get", kind: .unary),
            ] {
                let error = try await #require(throws: RPCError.self) {
                    try await channel.unary(
                        method, request: Self.request("x"), response: Portal_Testing_V1_EchoResponse.self,
                        metadata: [:], options: .init())
                }
                #expect(error.code == .unimplemented)
                #expect(error.message.contains(method.method == "Nope" ? "unknown method" : "unknown service"))
            }
            await channel.close()
        }
    }

    @Test func gracefulShutdownLetsInFlightCallsFinish() async throws {
        try await withEchoServer { server, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            // Long enough to be seen in flight while every other suite loads the machine too.
            let call = Task { try await client.get(Self.request("finishing") { $0.delayMs = 3000 }) }
            try await expectEventually { try await client.stats(.init()).callsActive == 1 }
            server.beginGracefulShutdown()
            #expect(try await call.value.message == "finishing")
            await channel.close()
        }
    }

    @Test func theChannelReconnectsAfterTheServerComesBack() async throws {
        let firstPort = try await withEchoServer { _, port in port }
        let channel = channel(to: firstPort) { $0.initialBackoff = .milliseconds(100) }
        let client = Portal_Testing_V1_EchoClient(channel: channel)
        let error = try await #require(throws: RPCError.self) { try await client.get(Self.request("nobody home")) }
        #expect(error.code == .unavailable)
        try await withEchoServer(configure: { $0.port = firstPort }) { _, _ in
            // The channel waits out its backoff (0.1 s) before it connects again.
            try await expectEventually { (try? await client.get(Self.request("back")))?.message == "back" }
        }
        await channel.close()
    }

    @Test func manyConcurrentCallsShareOneConnection() async throws {
        try await withEchoServer { _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<500 {
                    group.addTask { try await client.get(Self.request("call \(index)")).message == "call \(index)" }
                }
                for try await matched in group { #expect(matched) }
            }
            await channel.close()
        }
    }
}

/// Polls `condition` until it holds, failing after `timeout`.
func expectEventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("condition did not hold within \(timeout)")
}

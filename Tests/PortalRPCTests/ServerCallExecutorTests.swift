import Logging
import PortalRPC
import Synchronization
import Testing

@Suite("Server call executor")
struct ServerCallExecutorTests {
    static let method = MethodDescriptor(service: "test.v1.Test", method: "Run", kind: .unary)

    @Test func observersSeeEveryCallAroundItsInterceptorsAndOutcome() async {
        let log = Log()
        let executor = ServerCallExecutor(
            interceptors: [Recording(name: "policy", log: log)],
            observers: [Observing(name: "first", log: log), Observing(name: "second", log: log)],
            logger: Logger(label: "test"))
        let succeeded = await executor.execute(RPCRoute(Self.method) { _ in log.append("handler") }, call: Self.call())
        #expect(succeeded == nil)
        #expect(
            log.entries == [
                "first started", "second started", "policy in", "handler", "policy out", "first ended OK",
                "second ended OK",
            ])

        log.clear()
        let refused = await executor.execute(
            RPCRoute(Self.method) { _ in throw RPCError(.notFound, "no such thing") }, call: Self.call())
        #expect(refused?.code == .notFound && refused?.message == "no such thing")
        #expect(
            log.entries == [
                "first started", "second started", "policy in", "first ended NOT_FOUND", "second ended NOT_FOUND",
            ])
    }

    @Test func errorsOtherThanRPCErrorsBecomeAStatus() async {
        struct Broken: Error {}
        let log = Log()
        let executor = ServerCallExecutor(
            interceptors: [], observers: [Observing(name: "log", log: log)], logger: Logger(label: "test"))
        let cancelled = await executor.execute(
            RPCRoute(Self.method) { _ in throw CancellationError() }, call: Self.call())
        #expect(cancelled?.code == .cancelled)
        let unknown = await executor.execute(RPCRoute(Self.method) { _ in throw Broken() }, call: Self.call())
        #expect(unknown?.code == .unknown)
        #expect(unknown?.message == "the server failed to handle the call")
        #expect(unknown?.cause is Broken)
        #expect(log.entries == ["log started", "log ended CANCELLED", "log started", "log ended UNKNOWN"])
    }

    @Test func aSingleRequestHeldWholeIsReadWithoutWaitingAndTheResponseSentWithoutWaiting() async throws {
        let stream = HeldStream(request: Array("ping".utf8))
        let call = RPCServerCall(context: Self.context(), stream: stream)
        let request = try await call.singleRequest(Text.self)
        #expect(request.text == "ping")
        try await call.respond(with: Text(text: "pong"))
        #expect(stream.sent == [Array("pong".utf8)])
        #expect(stream.waitedCalls == 0)
    }

    @Test func anErrorIsAValue() {
        let original = RPCError(.notFound, "missing", metadata: ["k": "v"])
        var copy = original
        copy.code = .internal
        copy.message = "changed"
        copy.metadata = [:]
        #expect(
            original.code == .notFound && original.message == "missing"
                && original.metadata.firstString(forKey: "k") == "v")
        #expect(copy.code == .internal && copy.message == "changed" && copy.metadata.firstString(forKey: "k") == nil)
    }

    static func context() -> ServerContext {
        ServerContext(method: method, requestMetadata: [:], deadline: nil, peer: "test", requestID: "req-1")
    }

    static func call() -> RPCServerCall {
        RPCServerCall(context: context(), stream: HeldStream(request: nil))
    }
}

/// Entries in the order they were appended, from any task.
private final class Log: Sendable {
    private let storage = Mutex<[String]>([])
    var entries: [String] { storage.withLock { $0 } }
    func append(_ entry: String) { storage.withLock { $0.append(entry) } }
    func clear() { storage.withLock { $0 = [] } }
}

private struct Recording: ServerInterceptor {
    let name: String
    let log: Log

    func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
        log.append("\(name) in")
        try await next(context)
        log.append("\(name) out")
    }
}

private struct Observing: ServerCallObserver {
    let name: String
    let log: Log

    func callStarted(_ context: ServerContext) { log.append("\(name) started") }

    func callEnded(_ context: ServerContext, error: RPCError?, duration: Duration) {
        log.append("\(name) ended \(error?.code ?? .ok)\(duration < .zero ? " with a negative duration" : "")")
    }
}

/// A stream holding a whole single request, as the HTTP/2 transport does for unary methods;
/// counts the calls that would have had to wait.
private final class HeldStream: ServerCallStream {
    private struct State {
        var request: [UInt8]?
        var sent: [[UInt8]] = []
        var waitedCalls = 0
    }

    private let state: Mutex<State>

    init(request: [UInt8]?) { state = Mutex(State(request: request)) }

    var sent: [[UInt8]] { state.withLock { $0.sent } }
    var waitedCalls: Int { state.withLock { $0.waitedCalls } }

    func nextRequest() async throws -> [UInt8]? {
        state.withLock { state in
            state.waitedCalls += 1
            defer { state.request = nil }
            return state.request
        }
    }

    func sendResponse(_ message: [UInt8]) async throws {
        state.withLock { state in
            state.waitedCalls += 1
            state.sent.append(message)
        }
    }

    func takeCompleteRequest() -> [UInt8]? {
        state.withLock { state in
            defer { state.request = nil }
            return state.request
        }
    }

    func sendOnlyResponse(_ message: [UInt8]) throws -> Bool {
        state.withLock { $0.sent.append(message) }
        return true
    }
}

/// A message whose bytes are its text.
private struct Text: RPCMessage {
    var text: String
    init(text: String) { self.text = text }
    init(rpcBytes: [UInt8]) throws { text = String(decoding: rpcBytes, as: UTF8.self) }
    func rpcBytes() -> [UInt8] { Array(text.utf8) }
    func fieldLimitViolation() -> FieldLimitViolation? { nil }
}

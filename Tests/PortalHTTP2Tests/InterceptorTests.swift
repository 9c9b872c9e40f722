import PortalAPI
import PortalHTTP2
import PortalRPC
import Synchronization
import Testing

@Suite("Server interceptors")
struct InterceptorTests {
    /// Accepts only `authorization: Bearer let-me-in`.
    static let authentication = AuthenticationInterceptor { context in
        guard context.requestMetadata.firstString(forKey: "authorization") == "Bearer let-me-in" else {
            throw RPCError(.unauthenticated, "authorization: missing or invalid bearer token")
        }
        return RPCPrincipal(subject: "member-1", organizationID: "org-1", role: "ADMIN", displayName: "Ada")
    }

    @Test func callsWithoutValidCredentialsAreUnauthenticated() async throws {
        try await withEchoServer(interceptors: [Self.authentication]) { _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            let error = try await #require(throws: RPCError.self) { try await client.get(.init()) }
            #expect(error.code == .unauthenticated)
            #expect(error.message.contains("authorization"))
            let wrong = try await #require(throws: RPCError.self) {
                try await client.get(.init(), metadata: ["authorization": "Bearer guess"])
            }
            #expect(wrong.code == .unauthenticated)
            var request = Portal_Testing_V1_EchoRequest()
            request.message = "welcome"
            #expect(try await client.get(request, metadata: ["authorization": "Bearer let-me-in"]).message == "welcome")
            await channel.close()
        }
    }

    @Test func healthChecksNeedNoCredentials() async throws {
        try await withEchoServer(interceptors: [Self.authentication]) { _, port in
            let channel = channel(to: port)
            let health = Grpc_Health_V1_HealthClient(channel: channel)
            let status = try await health.check(.init()).status
            #expect(status == .serving)
            await channel.close()
        }
    }

    @Test func interceptorsRunOutermostFirstAndSeeTheOutcome() async throws {
        let recorder = Recorder()
        try await withEchoServer(interceptors: [recorder.interceptor("outer"), recorder.interceptor("inner")]) {
            _, port in
            let channel = channel(to: port)
            let client = Portal_Testing_V1_EchoClient(channel: channel)
            var failing = Portal_Testing_V1_EchoRequest()
            failing.failWithCode = Int32(RPCStatusCode.notFound.rawValue)
            _ = try? await client.get(failing)
            await channel.close()
        }
        #expect(recorder.events == ["outer in", "inner in", "inner NOT_FOUND", "outer NOT_FOUND"])
    }
}

/// Records what interceptors saw, in order.
final class Recorder: Sendable {
    private let log = LockedArray()

    var events: [String] { log.values }

    func interceptor(_ name: String) -> any ServerInterceptor {
        RecordingInterceptor(name: name, log: log)
    }
}

struct RecordingInterceptor: ServerInterceptor {
    let name: String
    let log: LockedArray

    func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
        log.append("\(name) in")
        do {
            try await next(context)
            log.append("\(name) OK")
        } catch let error as RPCError {
            log.append("\(name) \(error.code)")
            throw error
        }
    }
}

final class LockedArray: Sendable {
    private let storage = Mutex<[String]>([])
    var values: [String] { storage.withLock { $0 } }
    func append(_ value: String) { storage.withLock { $0.append(value) } }
}

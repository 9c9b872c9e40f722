import PortalAPI
import PortalRPC
import Synchronization

/// `grpc.health.v1.Health`: per-service serving status for probes, with `Watch` streams.
///
/// The empty service name stands for the whole server.
public final class HealthService: Grpc_Health_V1_HealthService {
    /// A serving status.
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: Status] = [:]
        var shuttingDown = false
        var watchers: [Int: (service: String, continuation: AsyncStream<Status>.Continuation)] = [:]
        var nextWatcher = 0
    }

    private let state = Locked(State())

    /// Creates the service with the server itself (`""`) and `services` SERVING.
    public init(services: [String] = []) {
        state.withLock { state in
            state.statuses[""] = .serving
            for service in services { state.statuses[service] = .serving }
        }
    }

    /// Sets the status of `service` and tells its watchers.
    public func setStatus(_ status: Status, for service: String) {
        let watchers = state.withLock { state in
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }.map(\.continuation)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// Whether the server itself (`""`) is SERVING: its readiness.
    public var isServing: Bool { state.withLock { $0.statuses[""] == .serving } }

    /// Marks every known service NOT_SERVING, as a server does when it starts shutting down; they stay so.
    public func markAllNotServing() {
        let services = state.withLock { state in
            state.shuttingDown = true
            return Array(state.statuses.keys)
        }
        for service in services { setStatus(.notServing, for: service) }
    }

    /// Marks every known service SERVING or NOT_SERVING as what they depend on (their database) comes
    /// and goes; after `markAllNotServing` they stay NOT_SERVING.
    public func setAvailable(_ available: Bool) {
        let status: Status = available ? .serving : .notServing
        // Checked and changed under one lock, so a shutdown beginning meanwhile is never undone.
        let watchers = state.withLock { state -> [AsyncStream<Status>.Continuation] in
            guard !state.shuttingDown else { return [] }
            for service in state.statuses.keys { state.statuses[service] = status }
            return state.watchers.values.filter { state.statuses[$0.service] != nil }.map(\.continuation)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// The current status of `service`, or `NOT_FOUND` for a service the server does not know.
    public func check(
        request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = state.withLock({ $0.statuses[request.service] }) else {
            throw RPCError(.notFound, "unknown service \(RPCError.quote(request.service))")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status
        return response
    }

    /// Sends the current status (SERVICE_UNKNOWN for an unknown service), then every change.
    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest, responses: ResponseWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        let (updates, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(1))
        let (id, current) = state.withLock { state in
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = (request.service, continuation)
            return (id, state.statuses[request.service] ?? .serviceUnknown)
        }
        defer { _ = state.withLock { $0.watchers.removeValue(forKey: id) } }
        var last = current
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = current
        try await responses.write(response)
        try await withTaskCancellationHandler {
            for await status in updates where status != last {
                last = status
                response.status = status
                try await responses.write(response)
            }
        } onCancel: {
            continuation.finish()
        }
        throw RPCError(.cancelled, "watch cancelled")
    }
}

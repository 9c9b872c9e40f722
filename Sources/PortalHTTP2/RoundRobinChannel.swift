import PortalRPC
import Synchronization

/// Calls spread over several instances of one service: each call goes to the next channel in turn,
/// and one whose instance cannot be reached (`UNAVAILABLE` before the call starts) is passed over for
/// the next, so a stopped instance costs a call nothing while another answers.
public final class RoundRobinChannel: RPCChannel, Sendable {
    private let channels: [RPCClientChannel]
    private let next = Atomic<Int>(0)

    /// A channel over `channels` (at least one).
    public init(_ channels: [RPCClientChannel]) {
        precondition(!channels.isEmpty, "a round-robin channel needs at least one channel")
        self.channels = channels
    }

    /// Starts the call on the next reachable instance.
    public func openCall(
        _ method: MethodDescriptor, metadata: Metadata, options: CallOptions
    ) async throws -> any ClientCallStream {
        let start = next.add(1, ordering: .relaxed).oldValue
        var lastError: (any Error)?
        for offset in 0..<channels.count {
            let channel = channels[(start + offset) % channels.count]
            do {
                return try await channel.openCall(method, metadata: metadata, options: options)
            } catch let error as RPCError where error.code == .unavailable {
                lastError = error
            }
        }
        throw lastError ?? RPCError(.unavailable, "no instance can be reached")
    }

    /// Closes every channel.
    public func close() async {
        for channel in channels { await channel.close() }
    }
}

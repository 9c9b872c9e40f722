import Foundation
import PortalAuditOutbox
import PortalStorage

/// An activation waiting for its transaction.
struct PendingActivation: Sendable {
    let request: EntitlementsStore.ActivationRequest
    let actor: AuditOutbox.Actor
    let now: Int64
}

/// Gathers concurrent activations into shared transactions (group commit).
///
/// SQLite has one writer, and each statement costs a thread hop; one transaction per activation
/// caps throughput at a few hundred a second. Activations that arrive while a transaction runs wait
/// and go together into the next one, which takes the same handful of statements for one activation
/// or a hundred (`ActivationBatch`). A batch that fails as a whole (not one activation's refusal, but
/// the database) is retried one activation per transaction, so each caller gets its own outcome.
actor ActivationBatcher {
    /// The most activations one transaction takes.
    static let maxBatch = 128

    private let database: ServiceDatabase
    private var waiting:
        [(activation: PendingActivation, continuation: CheckedContinuation<ActivationRecord, any Error>)] = []
    private var draining = false

    init(database: ServiceDatabase) {
        self.database = database
    }

    /// Queues the activation for the next transaction and returns its outcome once committed.
    func activate(_ activation: PendingActivation) async throws -> ActivationRecord {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append((activation, continuation))
            if !draining {
                draining = true
                Task { await drain() }
            }
        }
    }

    private func drain() async {
        while !waiting.isEmpty {
            let batch = Array(waiting.prefix(Self.maxBatch))
            waiting.removeFirst(batch.count)
            let outcomes = await run(batch.map(\.activation))
            for (entry, outcome) in zip(batch, outcomes) { entry.continuation.resume(with: outcome) }
        }
        draining = false
    }

    private func run(_ batch: [PendingActivation]) async -> [Result<ActivationRecord, any Error>] {
        do {
            // Every activation adds to its organization's per-product totals, so an organization's
            // batches take turns across instances (on PostgreSQL) rather than collide on those rows.
            // The organizations' keys cover all a batch reads and checks (their entitlements' lines,
            // totals, idempotency keys and outbox numbering; the lines' CHECK and the unique index on
            // idempotency keys back them): batches of other organizations never fail it.
            let organizations = batch.map { "entitlements-organization:" + $0.request.organizationID }
            return try await database.transaction(serializing: organizations, isolation: .keys) { database in
                try await ActivationBatch(batch).run(database)
            }
        } catch  where batch.count > 1 {
            var outcomes: [Result<ActivationRecord, any Error>] = []
            for activation in batch { outcomes.append(contentsOf: await run([activation])) }
            return outcomes
        } catch {
            return [.failure(error)]
        }
    }
}

import Foundation
import Metrics
import PortalStorage
import SQLKit

extension AuditStore {
    /// Appends events in order; an event id already stored (or repeated in the batch) is skipped.
    /// Returns (stored, duplicates).
    func append(_ events: [Incoming], now: Int64) async throws -> Appended {
        let batch = AuditAppendBatch(events, recordedAt: now, backend: database.backend)
        guard database.backend == .postgres else { return try await appendHoldingChains(batch, lookingUpStored: true) }
        // On PostgreSQL a batch is first chained behind this instance's batches in flight. The unique
        // index checks every event id anyway: the ids are looked up only once it refused one (a batch
        // sent again). Should the batch fail to follow its chains twice, or another instance append to
        // its organizations too, it holds them from the start: that always goes through.
        for attempt in 1... {
            do {
                if attempt <= 2, !pipeline.isContended(batch.organizationIDs) {
                    return try await appendPipelined(batch, lookingUpStored: attempt > 1)
                }
                return try await appendHoldingChains(batch, lookingUpStored: attempt > 1)
            } catch let error as DatabaseDuplicateError where attempt < 4 && error.constraint == "events_event_id_key" {
                Self.restarts.storedEventID.increment()
            } catch let error as DatabaseDuplicateError where attempt < 4 && error.constraint == "events_org_sequence" {
                Self.restarts.sequenceTaken.increment()
                pipeline.contended(batch.organizationIDs)
            } catch let moved as ChainMoved where attempt < 4 {
                Self.restarts.chainMoved.increment()
                if moved.elsewhere { pipeline.contended(batch.organizationIDs) }
            }
        }
        fatalError("unreachable: the last attempt returns or throws")
    }

    /// How many events of a batch were stored, and how many were duplicates.
    typealias Appended = (stored: Int, duplicates: Int)

    /// A chained batch found its chains moved on without it: it rolled back and starts over.
    private struct ChainMoved: Error {
        /// Another transaction holds or moved one of its chains (else a batch before it here failed).
        let elsewhere: Bool
    }

    /// Appends rolled back and started over, by why (`portal_audit_append_restarts_total{reason}`):
    /// a steady rate of `chain_moved` or `sequence_taken` means instances append to the same
    /// organizations at once; `event_id_stored` counts batches sent again.
    private static let restarts = (
        chainMoved: Counter(label: "portal_audit_append_restarts_total", dimensions: [("reason", "chain_moved")]),
        sequenceTaken: Counter(label: "portal_audit_append_restarts_total", dimensions: [("reason", "sequence_taken")]),
        storedEventID: Counter(label: "portal_audit_append_restarts_total", dimensions: [("reason", "event_id_stored")])
    )

    /// One transaction chained behind this instance's batches in flight for the same organizations
    /// (or after the stored heads): the events are inserted while those batches still commit; the
    /// chains' keys are taken once they did, the stored heads checked to be the ones followed, the
    /// events counted and the heads moved on.
    private func appendPipelined(_ batch: AuditAppendBatch, lookingUpStored: Bool) async throws -> Appended {
        let place = await pipeline.admit(Set(batch.events.map(\.organizationID)))
        do {
            let result = try await database.transaction(isolation: .keys) { [pipeline] database in
                var batch = batch
                if lookingUpStored {
                    let stored = try await Self.storedIDs(database, among: batch.events.map(\.eventID))
                    if !stored.isEmpty { batch = batch.without(stored) }
                }
                guard !batch.events.isEmpty else { return (0, batch.received) }
                let stored = try await Self.storedHeads(database, of: batch.organizationIDs)
                guard
                    let chained = pipeline.chain(
                        place, stored: stored,
                        { bases in
                            let links = ChainLinks(batch, after: bases)
                            return (links, links.heads)
                        })
                else { throw ChainMoved(elsewhere: false) }
                try await Self.copy(database, batch, chained.links)
                guard await chained.predecessorsCommitted() else { throw ChainMoved(elsewhere: false) }
                guard try await database.tryHolding(batch.chainKeys) else { throw ChainMoved(elsewhere: true) }
                let heads = try await Self.storedHeads(database, of: batch.organizationIDs)
                guard batch.organizationIDs.allSatisfy({ (heads[$0] ?? .empty) == chained.bases[$0] }) else {
                    throw ChainMoved(elsewhere: true)
                }
                try await Self.record(database, batch, chained.links)
                return (batch.events.count, batch.received - batch.events.count)
            }
            pipeline.leave(place, committed: true)
            return result
        } catch {
            pipeline.leave(place, committed: false)
            throw error
        }
    }

    /// One transaction holding the batch's organizations' chains: the stored heads read, the events
    /// chained after them, inserted, counted, and the heads moved on.
    private func appendHoldingChains(_ batch: AuditAppendBatch, lookingUpStored: Bool) async throws -> Appended {
        // Each organization's chain key covers all it reads (the chain head, its counters); event ids
        // are unique by index: appends for other organizations never fail it.
        try await database.transaction(serializing: batch.chainKeys, isolation: .keys) { database in
            var batch = batch
            if lookingUpStored {
                let stored = try await Self.storedIDs(database, among: batch.events.map(\.eventID))
                if !stored.isEmpty { batch = batch.without(stored) }
            }
            guard !batch.events.isEmpty else { return (0, batch.received) }
            let links = ChainLinks(batch, after: try await Self.storedHeads(database, of: batch.organizationIDs))
            if SQLBackend(database) == .postgres {
                try await Self.copy(database, batch, links)
            } else {
                try await Self.insert(database, batch, links)
            }
            try await Self.record(database, batch, links)
            return (batch.events.count, batch.received - batch.events.count)
        }
    }

    /// What follows the inserted events in their transaction: the counters, the webhook deliveries and
    /// the chain heads moved on.
    private static func record(_ database: any SQLDatabase, _ batch: AuditAppendBatch, _ links: ChainLinks) async throws
    {
        try await addToCounts(database, batch.counts)
        try await WebhookStore.enqueue(
            database,
            batch.events.indices.map { index in
                WebhookStore.AppendedEvent(
                    organizationID: batch.events[index].organizationID, eventID: batch.events[index].eventID,
                    organizationSequence: links.sequences[index], eventType: batch.events[index].eventType)
            }, now: batch.recordedAt)
        for (organizationID, head) in links.heads {
            try await database.raw(
                """
                INSERT INTO chain_heads (org_id, last_sequence, last_hash) VALUES (\(bind: organizationID), \(bind: head.sequence), \(bind: Data(head.hash)))
                ON CONFLICT (org_id) DO UPDATE SET last_sequence = excluded.last_sequence, last_hash = excluded.last_hash
                """
            ).run()
        }
    }

    /// The stored chain heads of `organizationIDs` (an organization without events has none).
    private static func storedHeads(
        _ database: any SQLDatabase, of organizationIDs: Set<String>
    ) async throws -> [String: ChainHead] {
        var list: SQLQueryString = ""
        for (offset, id) in organizationIDs.sorted().enumerated() {
            list = offset == 0 ? "\(bind: id)" : "\(list), \(bind: id)"
        }
        var heads: [String: ChainHead] = [:]
        for row in try await database.raw(
            "SELECT org_id, last_sequence, last_hash FROM chain_heads WHERE org_id IN (\(list))"
        ).all() {
            heads[try row.decode(column: "org_id", as: String.self)] = ChainHead(
                sequence: try row.decode(column: "last_sequence", as: Int64.self),
                hash: [UInt8](try row.decode(column: "last_hash", as: Data.self)))
        }
        return heads
    }

    /// Each event's place in its organization's chain: its sequence, the hash before it and its own.
    fileprivate struct ChainLinks: Sendable {
        var sequences: [Int64] = []
        var previousHashes: [[UInt8]] = []
        var hashes: [[UInt8]] = []
        /// Each organization's last sequence and hash after the batch.
        var heads: [String: ChainHead] = [:]

        /// The links following `bases`, the organizations' heads (an organization without one starts empty).
        init(_ batch: AuditAppendBatch, after bases: [String: ChainHead]) {
            sequences.reserveCapacity(batch.events.count)
            previousHashes.reserveCapacity(batch.events.count)
            hashes.reserveCapacity(batch.events.count)
            for (event, input) in zip(batch.events, batch.chainInputs) {
                let head = heads[event.organizationID] ?? bases[event.organizationID] ?? .empty
                let sequence = head.sequence + 1
                let hash = input.hash(previous: head.hash, organizationSequence: sequence)
                sequences.append(sequence)
                previousHashes.append(head.hash)
                hashes.append(hash)
                heads[event.organizationID] = ChainHead(sequence: sequence, hash: hash)
            }
        }
    }

    /// Inserts the chained events on PostgreSQL with one COPY: the rows' fields encoded beforehand,
    /// their sequences and hashes added.
    private static func copy(_ database: any SQLDatabase, _ batch: AuditAppendBatch, _ links: ChainLinks) async throws {
        var rows = CopyRows(capacity: batch.copyFields.reduce(0) { $0 + $1.count } + batch.events.count * 160)
        for index in batch.events.indices {
            rows.append(fieldsOf: batch.copyFields[index])
            rows.append(links.sequences[index])
            rows.append(bytes: links.previousHashes[index])
            rows.append(bytes: links.hashes[index])
            rows.endRow()
        }
        try await database.copy(rows, into: "events", columns: AuditAppendBatch.copyColumns)
    }

    /// Inserts the chained events on SQLite in multi-row statements of 100 events.
    private static func insert(_ database: any SQLDatabase, _ batch: AuditAppendBatch, _ links: ChainLinks) async throws
    {
        for start in stride(from: 0, to: batch.events.count, by: 100) {
            var values: SQLQueryString = ""
            for index in start..<min(start + 100, batch.events.count) {
                let event = batch.events[index]
                let row: SQLQueryString = """
                    (\(bind: event.eventID), \(bind: event.organizationID), \(bind: links.sequences[index]), \(bind: event.time),
                     \(bind: event.eventType), \(bind: event.action), \(bind: event.message), \(bind: event.user),
                     \(bind: event.actorMemberID), \(bind: event.subjectKind), \(bind: event.subjectID),
                     \(bind: Data(links.previousHashes[index])), \(bind: Data(links.hashes[index])), \(bind: batch.recordedAt))
                    """
                values = index == start ? row : "\(values), \(row)"
            }
            try await database.raw(
                """
                INSERT INTO events (event_id, org_id, org_sequence, time, event_type, action, message, user_name, actor_member_id,
                                    subject_kind, subject_id, previous_hash, hash, recorded_at)
                VALUES \(values)
                """
            ).run()
        }
    }

    /// Adds appended events to the per-organization counters that answer `total_size` without
    /// scanning: one statement for every counter the batch touches (a few dozen rows).
    private static func addToCounts(
        _ database: any SQLDatabase, _ counts: [AuditAppendBatch.CounterIncrement]
    ) async throws {
        guard !counts.isEmpty else { return }
        let rows = counts.map { count -> SQLQueryString in
            "(\(bind: count.organizationID), \(bind: count.dimension), \(bind: count.value), \(bind: count.n))"
        }
        try await database.raw(
            """
            INSERT INTO event_counts (org_id, dimension, value, n) VALUES \(rows.joined(separator: ", "))
            ON CONFLICT (org_id, dimension, value) DO UPDATE SET n = event_counts.n + excluded.n
            """
        ).run()
    }

    /// Which of `ids` are already stored (PostgreSQL: one array; SQLite: 500 at a time).
    private static func storedIDs(_ database: any SQLDatabase, among ids: [String]) async throws -> Set<String> {
        var found = Set<String>()
        if SQLBackend(database) == .postgres {
            for row in try await database.raw("SELECT event_id FROM events WHERE event_id = ANY(\(bind: ids)::text[])")
                .all()
            {
                found.insert(try SQLRowReader(row).string("event_id"))
            }
            return found
        }
        for start in stride(from: 0, to: ids.count, by: 500) {
            var list: SQLQueryString = ""
            for (offset, id) in ids[start..<min(start + 500, ids.count)].enumerated() {
                list = offset == 0 ? "\(bind: id)" : "\(list), \(bind: id)"
            }
            for row in try await database.raw("SELECT event_id FROM events WHERE event_id IN (\(list))").all() {
                found.insert(try row.decode(column: "event_id", as: String.self))
            }
        }
        return found
    }
}

import PortalStorage

/// Events ready to append: distinct by event id (the first of each kept), with everything that does
/// not depend on their organizations' chain heads — the hashed fields, the counter increments and, on
/// PostgreSQL, the rows' COPY fields — encoded before a chain is held.
struct AuditAppendBatch: Sendable {
    /// How many events were received, repeats included.
    let received: Int
    let events: [AuditStore.Incoming]
    let chainInputs: [ChainInput]
    /// Each event's fields but its sequence and hashes, as COPY text in `copyColumns`' order (PostgreSQL).
    let copyFields: [CopyRows]
    let counts: [CounterIncrement]
    let recordedAt: Int64

    /// The columns a COPY of the batch fills, those known only once the chain is held last.
    static let copyColumns = [
        "event_id", "org_id", "time", "event_type", "action", "message", "user_name", "actor_member_id",
        "subject_kind", "subject_id", "recorded_at", "org_sequence", "previous_hash", "hash",
    ]

    /// One counter's increment: events of an organization overall (`all`), by type, by user, by both.
    struct CounterIncrement: Sendable {
        let organizationID: String
        let dimension: String
        let value: String
        let n: Int64
    }

    init(_ incoming: [AuditStore.Incoming], recordedAt: Int64, backend: SQLBackend) {
        var seen = Set<String>()
        let events = incoming.filter { seen.insert($0.eventID).inserted }
        self.init(
            received: incoming.count, events: events, chainInputs: events.map(ChainInput.init),
            copyFields: backend == .postgres ? events.map { Self.copyFields($0, recordedAt: recordedAt) } : [],
            recordedAt: recordedAt)
    }

    private init(
        received: Int, events: [AuditStore.Incoming], chainInputs: [ChainInput], copyFields: [CopyRows],
        recordedAt: Int64
    ) {
        self.received = received
        self.events = events
        self.chainInputs = chainInputs
        self.copyFields = copyFields
        self.counts = Self.counts(events)
        self.recordedAt = recordedAt
    }

    /// The batch without the events whose ids are in `stored`.
    func without(_ stored: Set<String>) -> AuditAppendBatch {
        let kept = events.indices.filter { !stored.contains(events[$0].eventID) }
        return AuditAppendBatch(
            received: received, events: kept.map { events[$0] }, chainInputs: kept.map { chainInputs[$0] },
            copyFields: copyFields.isEmpty ? [] : kept.map { copyFields[$0] }, recordedAt: recordedAt)
    }

    /// The organizations the batch appends to.
    var organizationIDs: Set<String> { Set(events.map(\.organizationID)) }

    /// The keys of the batch's organizations' chains (appends to one organization take turns on it).
    var chainKeys: [String] { organizationIDs.map { "audit-chain:" + $0 } }

    private static func copyFields(_ event: AuditStore.Incoming, recordedAt: Int64) -> CopyRows {
        var fields = CopyRows(capacity: 96 + event.message.utf8.count)
        fields.append(event.eventID)
        fields.append(event.organizationID)
        fields.append(event.time)
        fields.append(event.eventType)
        fields.append(event.action)
        fields.append(event.message)
        fields.append(event.user)
        fields.append(event.actorMemberID)
        fields.append(event.subjectKind)
        fields.append(event.subjectID)
        fields.append(recordedAt)
        return fields
    }

    private static func counts(_ events: [AuditStore.Incoming]) -> [CounterIncrement] {
        struct Key: Hashable {
            let organizationID: String
            let dimension: String
            let value: String
        }
        var counts: [Key: Int64] = [:]
        for event in events {
            counts[Key(organizationID: event.organizationID, dimension: "all", value: ""), default: 0] += 1
            counts[Key(organizationID: event.organizationID, dimension: "type", value: event.eventType), default: 0] +=
                1
            counts[Key(organizationID: event.organizationID, dimension: "user", value: event.user), default: 0] += 1
            counts[
                Key(
                    organizationID: event.organizationID, dimension: "type_user",
                    value: event.eventType + "|" + event.user),
                default: 0] += 1
        }
        return counts.map {
            CounterIncrement(
                organizationID: $0.key.organizationID, dimension: $0.key.dimension, value: $0.key.value, n: $0.value)
        }
    }
}

extension ChainInput {
    init(_ event: AuditStore.Incoming) {
        self.init(
            eventID: event.eventID, organizationID: event.organizationID, time: event.time, eventType: event.eventType,
            action: event.action, message: event.message, user: event.user, actorMemberID: event.actorMemberID,
            subjectKind: event.subjectKind, subjectID: event.subjectID)
    }
}

import Foundation
import PortalAPI
import PortalCrypto
import PortalStorage
import SQLKit

/// A stored audit event.
struct AuditEventRecord: Sendable {
    let sequence: Int64
    let eventID: String
    let organizationID: String
    let organizationSequence: Int64
    let time: Int64
    let eventType: String
    let action: String
    let message: String
    let user: String
    let actorMemberID: String
    let subjectKind: String
    let subjectID: String
    let previousHash: [UInt8]
    let hash: [UInt8]
    let recordedAt: Int64

    static let columns = """
        seq, event_id, org_id, org_sequence, time, event_type, action, message, user_name, actor_member_id, subject_kind, \
        subject_id, previous_hash, hash, recorded_at
        """

    /// The columns, qualified for queries that join the full-text index.
    static let qualifiedColumns = qualified(columns, table: "events")

    init(row: any SQLRow) throws {
        sequence = try row.decode(column: "seq", as: Int64.self)
        eventID = try row.decode(column: "event_id", as: String.self)
        organizationID = try row.decode(column: "org_id", as: String.self)
        organizationSequence = try row.decode(column: "org_sequence", as: Int64.self)
        time = try row.decode(column: "time", as: Int64.self)
        eventType = try row.decode(column: "event_type", as: String.self)
        action = try row.decode(column: "action", as: String.self)
        message = try row.decode(column: "message", as: String.self)
        user = try row.decode(column: "user_name", as: String.self)
        actorMemberID = try row.decode(column: "actor_member_id", as: String.self)
        subjectKind = try row.decode(column: "subject_kind", as: String.self)
        subjectID = try row.decode(column: "subject_id", as: String.self)
        previousHash = [UInt8](try row.decode(column: "previous_hash", as: Data.self))
        hash = [UInt8](try row.decode(column: "hash", as: Data.self))
        recordedAt = try row.decode(column: "recorded_at", as: Int64.self)
    }

    init(
        sequence: Int64, eventID: String, organizationID: String, organizationSequence: Int64, time: Int64,
        eventType: String,
        action: String, message: String, user: String, actorMemberID: String, subjectKind: String, subjectID: String,
        previousHash: [UInt8], recordedAt: Int64
    ) {
        self.sequence = sequence
        self.eventID = eventID
        self.organizationID = organizationID
        self.organizationSequence = organizationSequence
        self.time = time
        self.eventType = eventType
        self.action = action
        self.message = message
        self.user = user
        self.actorMemberID = actorMemberID
        self.subjectKind = subjectKind
        self.subjectID = subjectID
        self.previousHash = previousHash
        self.recordedAt = recordedAt
        hash = ChainInput(
            eventID: eventID, organizationID: organizationID, time: time, eventType: eventType, action: action,
            message: message, user: user, actorMemberID: actorMemberID, subjectKind: subjectKind, subjectID: subjectID
        ).hash(previous: previousHash, organizationSequence: organizationSequence)
    }

    /// The hash this row should carry: SHA-256 over the previous hash and every field, each length-prefixed.
    var expectedHash: [UInt8] {
        ChainInput(self).hash(previous: previousHash, organizationSequence: organizationSequence)
    }

    var api: Portal_Audit_V1_Event {
        var event = Portal_Audit_V1_Event()
        event.eventID = eventID
        event.organizationID = organizationID
        event.time = Google_Protobuf_Timestamp(milliseconds: time)
        event.eventType = AuditVocabulary.eventType(stored: eventType)
        event.action = AuditVocabulary.action(stored: action)
        event.message = message
        event.user = user
        event.actorMemberID = actorMemberID
        event.subjectKind = AuditVocabulary.subjectKind(stored: subjectKind)
        event.subjectID = subjectID
        event.sequence = organizationSequence
        event.previousHash = previousHash
        event.hash = hash
        event.recordedAt = Google_Protobuf_Timestamp(milliseconds: recordedAt)
        return event
    }
}

/// An event's hashed fields, encoded (each length-prefixed) on both sides of its organization
/// sequence, which is known only once its organization's chain is held: the chain hash is then one
/// SHA-256 over the previous hash, these bytes and the sequence.
struct ChainInput: Sendable {
    private let leading: [UInt8]
    private let trailing: [UInt8]

    init(
        eventID: String, organizationID: String, time: Int64, eventType: String, action: String, message: String,
        user: String, actorMemberID: String, subjectKind: String, subjectID: String
    ) {
        var leading: [UInt8] = []
        Self.append(eventID, to: &leading)
        Self.append(organizationID, to: &leading)
        var trailing: [UInt8] = []
        trailing.reserveCapacity(64 + message.utf8.count + user.utf8.count)
        for field in [String(time), eventType, action, message, user, actorMemberID, subjectKind, subjectID] {
            Self.append(field, to: &trailing)
        }
        self.leading = leading
        self.trailing = trailing
    }

    init(_ record: AuditEventRecord) {
        self.init(
            eventID: record.eventID, organizationID: record.organizationID, time: record.time,
            eventType: record.eventType, action: record.action, message: record.message, user: record.user,
            actorMemberID: record.actorMemberID, subjectKind: record.subjectKind, subjectID: record.subjectID)
    }

    /// The chain hash of the event at `organizationSequence` following `previous`.
    func hash(previous: [UInt8], organizationSequence: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(previous.count + leading.count + 24 + trailing.count)
        bytes += previous
        bytes += leading
        Self.append(String(organizationSequence), to: &bytes)
        bytes += trailing
        return SecretHashing.sha256(bytes: bytes)
    }

    /// `field`'s UTF-8 bytes after their length (four bytes, big-endian).
    private static func append(_ field: String, to bytes: inout [UInt8]) {
        let length = UInt32(field.utf8.count)
        bytes.append(UInt8(length >> 24))
        bytes.append(UInt8(length >> 16 & 0xFF))
        bytes.append(UInt8(length >> 8 & 0xFF))
        bytes.append(UInt8(length & 0xFF))
        bytes += field.utf8
    }
}

/// How event types, actions and subject kinds are stored: their proto names without prefix.
enum AuditVocabulary {
    static func stored(_ type: Portal_Audit_V1_EventType) -> String? {
        switch type {
        case .members: "MEMBERS"
        case .licenses: "LICENSES"
        case .activations: "ACTIVATIONS"
        default: nil
        }
    }

    static func eventType(stored: String) -> Portal_Audit_V1_EventType {
        switch stored {
        case "MEMBERS": .members
        case "LICENSES": .licenses
        case "ACTIVATIONS": .activations
        default: .unspecified
        }
    }

    /// "Members", "Licenses", "Activations", as the seed shows types.
    static func title(stored: String) -> String {
        stored.prefix(1) + stored.dropFirst().lowercased()
    }

    static func stored(_ action: Portal_Audit_V1_EventAction) -> String { String(action.rawValue) }

    static func action(stored: String) -> Portal_Audit_V1_EventAction {
        Portal_Audit_V1_EventAction(rawValue: Int32(stored) ?? 0)
    }

    static func stored(_ kind: Portal_Audit_V1_SubjectKind) -> String { String(kind.rawValue) }

    static func subjectKind(stored: String) -> Portal_Audit_V1_SubjectKind {
        Portal_Audit_V1_SubjectKind(rawValue: Int32(stored) ?? 0)
    }
}

import Foundation
import PortalAPI
import PortalStorage
import SQLKit

/// Audit events of a service: written into its outbox inside the transaction of the change they
/// record, and relayed from there to the audit service.
public enum AuditOutbox {
    /// Who made a change: a member, or an internal caller ("system").
    public struct Actor: Sendable {
        /// The member id; empty for internal callers.
        public let memberID: String
        /// The name audit records show.
        public let displayName: String

        /// Internal callers.
        public static let system = Actor(memberID: "", displayName: "system")

        /// An actor.
        public init(memberID: String, displayName: String) {
            self.memberID = memberID
            self.displayName = displayName
        }
    }

    /// Queues one event for the audit service.
    public static func append(
        _ database: any SQLDatabase, organizationID: String, type: Portal_Audit_V1_EventType,
        action: Portal_Audit_V1_EventAction,
        message: String, actor: Actor, subjectKind: Portal_Audit_V1_SubjectKind, subjectID: String, now: Int64
    ) async throws {
        try await append(
            database,
            events: [
                event(
                    organizationID: organizationID, type: type, action: action, message: message, actor: actor,
                    subjectKind: subjectKind, subjectID: subjectID, now: now)
            ])
    }

    /// Queues events in order with one statement.
    public static func append(_ database: any SQLDatabase, events: [Portal_Audit_V1_NewEvent]) async throws {
        let messages = events.map { event in
            Outbox.Message(
                eventID: event.eventID, organizationID: event.organizationID, payload: event.serializedBytes(),
                createdAt: event.time?.milliseconds ?? 0)
        }
        try await Outbox.append(database, topic: topic, messages: messages)
    }

    /// An event with a fresh id, for `append(_:events:)`.
    public static func event(
        organizationID: String, type: Portal_Audit_V1_EventType, action: Portal_Audit_V1_EventAction,
        message: String, actor: Actor, subjectKind: Portal_Audit_V1_SubjectKind, subjectID: String, now: Int64
    ) -> Portal_Audit_V1_NewEvent {
        .with {
            $0.eventID = UUID().uuidString.lowercased()
            $0.organizationID = organizationID
            $0.time = Google_Protobuf_Timestamp(milliseconds: now)
            $0.eventType = type
            $0.action = action
            $0.message = message
            $0.user = actor.displayName
            $0.actorMemberID = actor.memberID
            $0.subjectKind = subjectKind
            $0.subjectID = subjectID
        }
    }
}

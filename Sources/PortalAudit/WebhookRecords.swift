import Foundation
import PortalAPI
import PortalCrypto
import PortalStorage
import SQLKit

/// A stored webhook endpoint; its secrets stay sealed.
struct WebhookRecord: Sendable {
    let webhookID: String
    let organizationID: String
    let url: String
    /// Stored event types it receives; empty means every type.
    let eventTypes: [String]
    let description: String
    let enabled: Bool
    let sealedSecret: [UInt8]
    let sealedPreviousSecret: [UInt8]?
    let previousSecretExpiresAt: Int64?
    let createdAt: Int64

    static let columns = """
        webhook_id, org_id, url, event_types, description, enabled, secret, previous_secret, \
        previous_secret_expires_at, created_at
        """

    init(row: any SQLRow) throws {
        webhookID = try row.decode(column: "webhook_id", as: String.self)
        organizationID = try row.decode(column: "org_id", as: String.self)
        url = try row.decode(column: "url", as: String.self)
        eventTypes = try row.decode(column: "event_types", as: String.self).split(separator: ",").map(String.init)
        description = try row.decode(column: "description", as: String.self)
        enabled = try row.decode(column: "enabled", as: Int64.self) != 0
        sealedSecret = [UInt8](try row.decode(column: "secret", as: Data.self))
        sealedPreviousSecret = try row.decode(column: "previous_secret", as: Data?.self).map { [UInt8]($0) }
        previousSecretExpiresAt = try row.decode(column: "previous_secret_expires_at", as: Int64?.self)
        createdAt = try row.decode(column: "created_at", as: Int64.self)
    }

    /// Whether it receives events of the stored type `eventType`.
    func receives(_ eventType: String) -> Bool { eventTypes.isEmpty || eventTypes.contains(eventType) }

    var api: Portal_Audit_V1_Webhook {
        var webhook = Portal_Audit_V1_Webhook()
        webhook.webhookID = webhookID
        webhook.organizationID = organizationID
        webhook.url = url
        webhook.eventTypes = eventTypes.map(AuditVocabulary.eventType(stored:))
        webhook.description = description
        webhook.enabled = enabled
        webhook.createdAt = Google_Protobuf_Timestamp(milliseconds: createdAt)
        if let previousSecretExpiresAt {
            webhook.previousSecretExpiresAt = Google_Protobuf_Timestamp(milliseconds: previousSecretExpiresAt)
        }
        return webhook
    }
}

/// One event queued for (or sent to) one endpoint.
struct DeliveryRecord: Sendable {
    /// States as stored.
    enum State: String, Sendable {
        case pending, delivered, failed
    }

    let sequence: Int64
    let deliveryID: String
    let webhookID: String
    let organizationID: String
    let eventID: String
    let organizationSequence: Int64
    let state: State
    let attempts: Int
    let lastStatus: Int
    let lastError: String
    let createdAt: Int64
    let nextAttemptAt: Int64
    let finishedAt: Int64?

    static let columns = """
        seq, delivery_id, webhook_id, org_id, event_id, org_sequence, state, attempts, last_status, last_error, \
        created_at, next_attempt_at, finished_at
        """

    init(row: any SQLRow) throws {
        sequence = try row.decode(column: "seq", as: Int64.self)
        deliveryID = try row.decode(column: "delivery_id", as: String.self)
        webhookID = try row.decode(column: "webhook_id", as: String.self)
        organizationID = try row.decode(column: "org_id", as: String.self)
        eventID = try row.decode(column: "event_id", as: String.self)
        organizationSequence = try row.decode(column: "org_sequence", as: Int64.self)
        state = State(rawValue: try row.decode(column: "state", as: String.self)) ?? .failed
        attempts = Int(try row.decode(column: "attempts", as: Int64.self))
        lastStatus = Int(try row.decode(column: "last_status", as: Int64.self))
        lastError = try row.decode(column: "last_error", as: String.self)
        createdAt = try row.decode(column: "created_at", as: Int64.self)
        nextAttemptAt = try row.decode(column: "next_attempt_at", as: Int64.self)
        finishedAt = try row.decode(column: "finished_at", as: Int64?.self)
    }

    var api: Portal_Audit_V1_Delivery {
        var delivery = Portal_Audit_V1_Delivery()
        delivery.deliveryID = deliveryID
        delivery.webhookID = webhookID
        delivery.eventID = eventID
        delivery.sequence = organizationSequence
        delivery.state =
            switch state {
            case .pending: .pending
            case .delivered: .delivered
            case .failed: .failed
            }
        delivery.attempts = Int32(attempts)
        delivery.lastStatus = Int32(lastStatus)
        delivery.lastError = lastError
        delivery.createdAt = Google_Protobuf_Timestamp(milliseconds: createdAt)
        if state == .pending { delivery.nextAttemptAt = Google_Protobuf_Timestamp(milliseconds: nextAttemptAt) }
        if let finishedAt { delivery.finishedAt = Google_Protobuf_Timestamp(milliseconds: finishedAt) }
        return delivery
    }
}

/// A random id with a prefix: `whk_…`, `dlv_…` (96 bits, hexadecimal).
func newIdentifier(_ prefix: String) -> String {
    prefix + SecretHashing.randomBytes(12).map { String(format: "%02x", $0) }.joined()
}

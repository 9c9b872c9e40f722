import ArgumentParser
import Foundation
import PortalClient

/// `portalctl webhooks …`: the organization's webhook endpoints and their deliveries (Admins).
struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Endpoints that receive your organization's events as signed HTTPS POSTs (Admins).",
        subcommands: [
            ListWebhooks.self, CreateWebhook.self, UpdateWebhook.self, DeleteWebhook.self, WebhookDeliveries.self,
            RedeliverWebhookEvent.self,
        ],
        defaultSubcommand: ListWebhooks.self)

    static func record(_ webhook: Portal_Audit_V1_Webhook) -> [String: Any] {
        [
            "webhook_id": webhook.webhookID, "url": webhook.url,
            "event_types": webhook.eventTypes.map(JSONRecords.eventType),
            "description": webhook.description, "enabled": webhook.enabled, "created_at": Output.iso(webhook.createdAt),
        ]
    }

    static func state(_ state: Portal_Audit_V1_DeliveryState) -> String {
        switch state {
        case .pending: "pending"
        case .delivered: "delivered"
        case .failed: "failed"
        default: "unknown"
        }
    }

    /// Prints a webhook, and its secret when the answer carries one.
    static func show(_ webhook: Portal_Audit_V1_Webhook, secret: String, json: Bool) throws {
        if json {
            var record = record(webhook)
            if !secret.isEmpty { record["secret"] = secret }
            return try Output.json(record)
        }
        let types =
            webhook.eventTypes.isEmpty
            ? "all events" : webhook.eventTypes.map(JSONRecords.eventType).joined(separator: ", ")
        print("\(webhook.webhookID)  \(webhook.url)  (\(types)\(webhook.enabled ? "" : ", paused"))")
        if !secret.isEmpty {
            print("Signing secret (shown once; keep it where the receiver can read it):\n\(secret)")
        }
    }
}

struct ListWebhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Your organization's webhooks.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.run { client in
            let webhooks = try await client.portal.listWebhooks(.init(), options: global.callOptions).webhooks
            if global.json { return try Output.json(["webhooks": webhooks.map(Webhooks.record)]) }
            Output.table(
                ["Webhook", "URL", "Events", "State", "Description"],
                webhooks.map {
                    [
                        $0.webhookID, $0.url,
                        $0.eventTypes.isEmpty ? "all" : $0.eventTypes.map(JSONRecords.eventType).joined(separator: ","),
                        $0.enabled ? "enabled" : "paused", $0.description,
                    ]
                })
        }
    }
}

struct CreateWebhook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Register an https endpoint; prints its signing secret once.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The endpoint: https://host[:port]/path.") var url: String
    @Option(help: "Only this type: members, licenses or activations (repeat for several; default all).")
    var type: [String] = []
    @Option(help: "What it is for.") var description: String = ""

    func run() async throws {
        let types = try AuditLog.eventTypes(type)
        try await global.run { client in
            let created = try await client.portal.createWebhook(
                .with {
                    $0.url = url
                    $0.eventTypes = types
                    $0.description = description
                }, options: global.callOptions)
            try Webhooks.show(created.webhook ?? .init(), secret: created.secret, json: global.json)
        }
    }
}

struct UpdateWebhook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Change a webhook, pause or enable it, or rotate its secret.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The webhook id.") var webhookID: String
    @Option(help: "A new endpoint URL.") var url: String?
    @Option(help: "Only this type from now on (repeat for several).") var type: [String] = []
    @Flag(help: "Receive every type from now on.") var allTypes = false
    @Option(help: "A new description.") var description: String?
    @Flag(help: "Resume deliveries.") var enable = false
    @Flag(help: "Stop queuing events for it.") var pause = false
    @Flag(help: "Make a new secret; the old one keeps signing beside it for 24 hours.") var rotateSecret = false

    func validate() throws {
        if enable && pause { throw ValidationError("--enable and --pause: choose one") }
        if allTypes && !type.isEmpty { throw ValidationError("--all-types and --type: choose one") }
    }

    func run() async throws {
        let types = try AuditLog.eventTypes(type)
        try await global.run { client in
            let updated = try await client.portal.updateWebhook(
                .with {
                    $0.webhookID = webhookID
                    if let url {
                        $0.setURL = true
                        $0.url = url
                    }
                    if allTypes || !types.isEmpty {
                        $0.setEventTypes = true
                        $0.eventTypes = types
                    }
                    if let description {
                        $0.setDescription = true
                        $0.description = description
                    }
                    if enable || pause {
                        $0.setEnabled = true
                        $0.enabled = enable
                    }
                    $0.rotateSecret = rotateSecret
                }, options: global.callOptions)
            try Webhooks.show(updated.webhook ?? .init(), secret: updated.secret, json: global.json)
        }
    }
}

struct DeleteWebhook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a webhook; what is queued for it is dropped.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The webhook id.") var webhookID: String

    func run() async throws {
        try await global.run { client in
            _ = try await client.portal.deleteWebhook(.with { $0.webhookID = webhookID }, options: global.callOptions)
            if global.json { return try Output.json(["deleted": webhookID]) }
            print("Deleted webhook \(webhookID).")
        }
    }
}

struct WebhookDeliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliveries", abstract: "A webhook's deliveries, newest first, with their attempts.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var paging: PagingOptions
    @Argument(help: "The webhook id.") var webhookID: String
    @Option(help: "Only pending, delivered or failed ones.") var state: String?

    func run() async throws {
        let wanted: Portal_Audit_V1_DeliveryState =
            switch state?.lowercased() {
            case nil: .unspecified
            case "pending": .pending
            case "delivered": .delivered
            case "failed": .failed
            case let other?: throw ValidationError("--state: expected pending, delivered or failed, not \(other)")
            }
        try await global.run { client in
            let page = try await client.portal.listWebhookDeliveries(
                .with {
                    $0.webhookID = webhookID
                    $0.pageSize = paging.pageSize
                    $0.pageToken = paging.pageToken
                    $0.state = wanted
                }, options: global.callOptions)
            if global.json {
                return try Output.json(
                    JSONRecords.page(
                        "deliveries",
                        page.deliveries.map {
                            [
                                "delivery_id": $0.deliveryID, "event_id": $0.eventID, "sequence": $0.sequence,
                                "state": Webhooks.state($0.state), "attempts": $0.attempts,
                                "last_status": $0.lastStatus, "last_error": $0.lastError,
                                "created_at": Output.iso($0.createdAt), "next_attempt_at": Output.iso($0.nextAttemptAt),
                                "finished_at": Output.iso($0.finishedAt),
                            ] as [String: Any]
                        }, nextPageToken: page.nextPageToken, totalSize: Int64(page.deliveries.count)))
            }
            Output.table(
                ["Queued", "Event", "State", "Attempts", "Last answer", "Next attempt"],
                page.deliveries.map {
                    [
                        Output.time($0.createdAt), $0.eventID, Webhooks.state($0.state), "\($0.attempts)",
                        $0.lastError.isEmpty ? ($0.lastStatus == 0 ? "—" : "HTTP \($0.lastStatus)") : $0.lastError,
                        $0.state == .pending ? Output.time($0.nextAttemptAt) : "—",
                    ]
                })
            if !page.nextPageToken.isEmpty { print("More: --page-token \(page.nextPageToken)") }
        }
    }
}

struct RedeliverWebhookEvent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redeliver", abstract: "Send one of your organization's events to a webhook again.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The webhook id.") var webhookID: String
    @Argument(help: "The event id.") var eventID: String

    func run() async throws {
        try await global.run { client in
            let delivery = try await client.portal.redeliverWebhookEvent(
                .with {
                    $0.webhookID = webhookID
                    $0.eventID = eventID
                }, options: global.callOptions
            ).delivery
            if global.json { return try Output.json(["delivery_id": delivery?.deliveryID ?? "", "event_id": eventID]) }
            print("Queued delivery \(delivery?.deliveryID ?? "") of \(eventID).")
        }
    }
}

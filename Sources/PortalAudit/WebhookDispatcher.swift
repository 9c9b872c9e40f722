import Foundation
import Logging
import PortalAPI
import PortalCrypto
import PortalProtoJSON
import PortalRPC
import PortalTime
import PortalWebhookTransport
import ServiceLifecycle

/// Sends queued webhook deliveries: each endpoint's queue in order, one delivery at a time, several
/// endpoints at once. A delivery that fails (no answer, a timeout, a status other than 2xx) is tried
/// again after growing, jittered waits (1 s doubling to an hour) until 24 hours have passed since it
/// was queued; then it is marked failed and the endpoint's next delivery goes out. One instance
/// sends at a time (a lease); the queue is in the database, so a restart loses nothing (a delivery
/// whose answer was lost in a crash is sent again: receivers de-duplicate by `Portal-Event-Id`).
final class WebhookDispatcher: Service, Sendable {
    /// How deliveries are sent.
    struct Settings: Sendable {
        /// Which addresses endpoints may reach.
        var policy = WebhookTargetPolicy()
        /// How long an endpoint has to answer.
        var timeout: Duration = .seconds(10)
        /// Endpoints served at once.
        var concurrency = 16
        /// How long a delivery is retried before it is given up.
        var retryWindowMilliseconds: Int64 = 24 * 3_600_000
        /// How often the queue is looked at without a wake-up (deliveries queued by other instances, retries).
        var sweepInterval: Duration = .seconds(1)
    }

    private let store: WebhookStore
    private let secrets: SecretBox?
    private let poster: WebhookPoster
    private let codec: ProtoJSONCodec
    private let settings: Settings
    private let clock: any ServiceClock
    private let logger: Logger
    private let wakeUps: AsyncStream<Void>
    private let wakeUpSink: AsyncStream<Void>.Continuation

    init(
        store: WebhookStore, secrets: SecretBox?, poster: WebhookPoster, settings: Settings, clock: any ServiceClock,
        logger: Logger
    ) throws {
        self.store = store
        self.secrets = secrets
        self.poster = poster
        self.codec = try ProtoJSONCodec(files: ProtoFileRegistry.files)
        self.settings = settings
        self.clock = clock
        self.logger = logger
        (wakeUps, wakeUpSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wakeUpSink.yield()
    }

    /// Asks the dispatcher to look at the queue now (deliveries were queued).
    func wakeUp() { wakeUpSink.yield() }

    /// Sends until graceful shutdown, which cancels deliveries in flight: they stay queued and go
    /// out again after the restart.
    func run() async throws {
        let (clock, sweep, sink) = (clock, settings.sweepInterval, wakeUpSink)
        try? await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while (try? await clock.sleep(for: sweep)) != nil { sink.yield() }
                }
                for await _ in self.wakeUps {
                    await self.sendDue()
                }
                group.cancelAll()
            }
        }
    }

    /// Sends rounds of due deliveries (each endpoint's first) until none is due.
    private func sendDue() async {
        while !Task.isCancelled {
            do {
                let sent = try await store.database.withLease("webhook-dispatch") { try await self.sendRound() }
                guard let sent, sent > 0 else { return }
            } catch {
                logger.warning("webhook dispatch failed; retrying at the next sweep", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    /// Sends the first due delivery of up to `concurrency` endpoints at once; returns how many.
    private func sendRound() async throws -> Int {
        let due = try await store.due(now: clock.milliseconds(), limit: settings.concurrency)
        await withDiscardingTaskGroup { group in
            for delivery in due {
                group.addTask { await self.send(delivery) }
            }
        }
        return due.count
    }

    private func send(_ due: WebhookStore.DueDelivery) async {
        let outcome: WebhookStore.Outcome
        do {
            let status = try await post(due)
            if (200..<300).contains(status) {
                outcome = .delivered(status: status)
            } else {
                outcome = failure(due.delivery, status: status, error: "HTTP \(status)")
            }
        } catch {
            if Task.isCancelled { return }  // shutting down: it stays queued
            outcome = failure(due.delivery, status: 0, error: "\(error)")
        }
        do {
            try await store.record(outcome, of: due.delivery, now: clock.milliseconds())
        } catch {
            logger.warning(
                "could not record a webhook delivery's outcome; it will be sent again",
                metadata: ["delivery_id": "\(due.delivery.deliveryID)", "error": "\(error)"])
        }
        if case .failed(_, let error, let retryAt) = outcome, due.delivery.attempts == 0 || retryAt == nil {
            logger.notice(
                retryAt == nil ? "webhook delivery given up" : "webhook delivery failed; retrying",
                metadata: [
                    "webhook_id": "\(due.webhook.webhookID)", "delivery_id": "\(due.delivery.deliveryID)",
                    "error": "\(error)",
                ])
        }
    }

    /// The next attempt after a failure: 1 s doubling per attempt up to an hour, jittered (±20%),
    /// while the retry window lasts; nil once it has passed.
    private func failure(_ delivery: DeliveryRecord, status: Int, error: String) -> WebhookStore.Outcome {
        let now = clock.milliseconds()
        let base = min(3_600_000.0, 1000 * pow(2, Double(min(delivery.attempts, 22))))
        let delay = Int64(base * Double.random(in: 0.8...1.2))
        let retryAt = now + delay
        let givenUp = retryAt - delivery.createdAt > settings.retryWindowMilliseconds
        return .failed(status: status, error: String(error.prefix(500)), retryAt: givenUp ? nil : retryAt)
    }

    /// POSTs the delivery, signed; returns the answer's status.
    private func post(_ due: WebhookStore.DueDelivery) async throws -> Int {
        let url = try WebhookURL(due.webhook.url)
        let addresses = try await settings.policy.addresses(for: url)
        let body = try payload(due)
        let now = clock.milliseconds()
        var keys = [try secret(due.webhook.sealedSecret)]
        if let previous = due.webhook.sealedPreviousSecret, let until = due.webhook.previousSecretExpiresAt, until > now
        {
            keys.append(try secret(previous))
        }
        let timestamp = now / 1000
        let headers = [
            ("Content-Type", "application/json"), ("User-Agent", "EndCustomerPortal-Webhooks/1"),
            ("Portal-Webhook-Id", due.webhook.webhookID), ("Portal-Delivery-Id", due.delivery.deliveryID),
            ("Portal-Event-Id", due.event.eventID), ("Portal-Timestamp", String(timestamp)),
            ("Portal-Signature", WebhookSignature.header(secrets: keys, timestamp: timestamp, body: body)),
        ]
        var lastFailure: (any Error)?
        for address in addresses {  // the next address when one cannot be connected to
            do {
                return try await poster.post(body, to: url, at: address, headers: headers, timeout: settings.timeout)
                    .status
            } catch let failure as WebhookPoster.Failure where failure.notConnected {
                lastFailure = failure
            }
        }
        throw lastFailure ?? WebhookDeliveryError(description: "no address to connect to")
    }

    /// `{"webhookId":…,"deliveryId":…,"event":<the event as the API's JSON>}`.
    private func payload(_ due: WebhookStore.DueDelivery) throws -> [UInt8] {
        let event = try codec.json(fromBinary: due.event.api.rpcBytes(), messageType: "portal.audit.v1.Event")
        return Array(
            "{\"webhookId\":\"\(due.webhook.webhookID)\",\"deliveryId\":\"\(due.delivery.deliveryID)\",\"event\":".utf8)
            + event + Array("}".utf8)
    }

    private func secret(_ sealed: [UInt8]) throws -> String {
        guard let plain = secrets?.open(sealed) else {
            throw WebhookDeliveryError(description: "the endpoint's secret cannot be opened with this service's key")
        }
        return String(decoding: plain, as: UTF8.self)
    }
}

/// Why a delivery could not be attempted.
struct WebhookDeliveryError: Error, CustomStringConvertible {
    let description: String
}

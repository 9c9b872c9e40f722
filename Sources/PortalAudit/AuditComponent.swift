import Foundation
import Logging
import PortalCrypto
import PortalRPC
import PortalStorage
import PortalTime
import PortalWebhookTransport
import ServiceLifecycle

/// The audit service assembled: its database, RPC handler and webhook dispatcher.
public struct AuditComponent: Sendable {
    /// The RPC service to host.
    public let service: any RPCService
    /// The database; run it as a service listed before the server so it closes last.
    public let database: ServiceDatabase
    /// The event streams (WatchEvents); close them when shutdown begins.
    public let liveStreams: LiveStreams
    /// Workers to run beside the server: the webhook dispatcher.
    public let workers: [any Service]

    /// How webhooks are delivered.
    public struct WebhookSettings: Sendable {
        /// Whether endpoints on loopback, private and link-local addresses may be registered and
        /// reached (development; plain http only to loopback).
        public var allowPrivateNetworks = false
        /// How long an endpoint has to answer a delivery.
        public var timeout: Duration = .seconds(10)
        /// PEM CA files trusted for endpoints' certificates beside the system's.
        public var trustRoots: [String] = []
        /// The 32-byte key sealing endpoints' secrets in the database. Without it a service on SQLite
        /// reads (or creates) the file `webhook-secrets.key` in its data directory, and a service on
        /// PostgreSQL, whose instances need one key, refuses to create webhooks.
        public var secretsKey: [UInt8]?

        /// The defaults: public https endpoints only, 10 s to answer.
        public init() {}
    }

    /// Opens (and migrates) `database`, or `audit.sqlite` under `dataDirectory` without one, and builds
    /// the service; `clock` dates what it receives.
    public static func start(
        dataDirectory: String, database: PostgresLocation? = nil, pageTokens: PageTokenKeys = .random(),
        webhooks: WebhookSettings = WebhookSettings(), clock: any ServiceClock = .system,
        logger: Logger
    ) async throws -> AuditComponent {
        // On SQLite the one instance keeps its key beside its database; instances sharing PostgreSQL
        // must be given one key (without it they serve everything but webhooks).
        let key = try webhooks.secretsKey ?? (database == nil ? Self.secretsKey(in: dataDirectory) : nil)
        let secrets = try key.map { key in
            guard let box = SecretBox(key: key) else {
                throw WebhookSettingsError(description: "the webhook secrets key must be 32 bytes, not \(key.count)")
            }
            return box
        }
        let poster = WebhookPoster(extraTrustRoots: webhooks.trustRoots)
        let location =
            database.map(DatabaseLocation.postgres)
            ?? .sqlite(path: (dataDirectory as NSString).appendingPathComponent("audit.sqlite"))
        let database = try await ServiceDatabase.open(
            location, name: "audit", migrations: AuditMigrations.all, logger: logger)
        let liveStreams = LiveStreams(
            closingMessage: "the audit service is shutting down; reconnect with the last cursor received")
        let webhookStore = WebhookStore(database: database)
        var dispatch = WebhookDispatcher.Settings()
        dispatch.policy = WebhookTargetPolicy(allowPrivateNetworks: webhooks.allowPrivateNetworks)
        dispatch.timeout = webhooks.timeout
        let dispatcher = try WebhookDispatcher(
            store: webhookStore, secrets: secrets, poster: poster, settings: dispatch, clock: clock, logger: logger)
        let handler = AuditServiceHandler(
            store: AuditStore(database: database), clock: clock, pageTokens: pageTokens, liveStreams: liveStreams,
            webhooks: AuditWebhooks(
                store: webhookStore, secrets: secrets, policy: dispatch.policy, dispatcher: dispatcher))
        return AuditComponent(service: handler, database: database, liveStreams: liveStreams, workers: [dispatcher])
    }

    /// The key in `webhook-secrets.key` under `dataDirectory`, made (random, mode 0600) when absent.
    static func secretsKey(in dataDirectory: String) throws -> [UInt8] {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let path = (dataDirectory as NSString).appendingPathComponent("webhook-secrets.key")
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count == SecretBox.keySize else {
                throw WebhookSettingsError(description: "\(path) must hold 32 bytes, not \(data.count)")
            }
            return [UInt8](data)
        }
        let key = SecretHashing.randomBytes(SecretBox.keySize)
        guard FileManager.default.createFile(atPath: path, contents: Data(key), attributes: [.posixPermissions: 0o600])
        else {
            throw WebhookSettingsError(description: "cannot write \(path)")
        }
        return key
    }
}

/// A webhook setting that cannot be used.
public struct WebhookSettingsError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public let description: String
}

/// What the handler's webhook RPCs use.
struct AuditWebhooks: Sendable {
    let store: WebhookStore
    /// Nil on PostgreSQL without a configured key: webhooks cannot be created.
    let secrets: SecretBox?
    let policy: WebhookTargetPolicy
    let dispatcher: WebhookDispatcher
}

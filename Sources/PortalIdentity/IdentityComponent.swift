import Foundation
import Logging
import PortalCrypto
import PortalRPC
import PortalStorage
import ServiceLifecycle

/// The identity service assembled: its database, RPC handler and background workers.
public struct IdentityComponent: Sendable {
    /// Settings with production defaults.
    public struct Settings: Sendable {
        /// Folder holding `identity.sqlite` and the `mail-spool` folder.
        public var dataDirectory: String
        /// The From address of invite mail.
        public var mailSender = "End Customer Portal <no-reply@portal.invalid>"
        /// The accept link in invite mail; `{secret}` is replaced by the invite secret.
        public var acceptURL = "https://portal.invalid/accept-invite?code={secret}"
        /// scrypt cost for new password hashes.
        public var passwordParameters = SecretHashing.ScryptParameters.standard

        /// Settings storing data under `dataDirectory`.
        public init(dataDirectory: String) {
            self.dataDirectory = dataDirectory
        }
    }

    /// The RPC service to host.
    public let service: any RPCService
    /// Workers to run beside the server (the invite mailer).
    public let workers: [any Service]
    /// The database, closed when the process stops.
    public let store: SQLStore

    /// Opens (and migrates) the database and builds the service.
    public static func start(settings: Settings, logger: Logger) async throws -> IdentityComponent {
        let store = try await SQLStore.open(
            path: (settings.dataDirectory as NSString).appendingPathComponent("identity.sqlite"), migrations: IdentityMigrations.all, logger: logger)
        let identityStore = IdentityStore(store: store, sessionPolicy: SessionPolicy())
        let mailer = InviteMailer(
            store: store, spoolDirectory: (settings.dataDirectory as NSString).appendingPathComponent("mail-spool"),
            sender: settings.mailSender, acceptURL: settings.acceptURL, logger: logger)
        let handler = IdentityServiceHandler(
            store: identityStore, passwordParameters: settings.passwordParameters,
            clock: { Int64(Date().timeIntervalSince1970 * 1000) }, onMailQueued: { mailer.wakeUp() })
        return IdentityComponent(service: handler, workers: [mailer], store: store)
    }
}

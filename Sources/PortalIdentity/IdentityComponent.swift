import Foundation
import Logging
import PortalCrypto
import PortalMail
import PortalRPC
import PortalStorage
import PortalTime
import ServiceLifecycle

/// The identity service assembled: its database, RPC handler and background workers.
public struct IdentityComponent: Sendable {
    /// Settings with production defaults.
    public struct Settings: Sendable {
        /// Folder holding `identity.sqlite` and the `mail-spool` folder.
        public var dataDirectory: String
        /// The address invite mail comes from.
        public var mailFrom = "no-reply@portal.invalid"
        /// An SMTP server (`host:port`) to send invite mail to; nil spools it to `mail-spool` under the data directory.
        public var smtpServer: String?
        /// The accept link in invite mail, an `http` or `https` URL in which `{secret}` is replaced by the
        /// invite secret (checked by `InviteLinkTemplate` at start); point it at the web portal.
        public var acceptURL = "https://portal.invalid/accept-invite?code={secret}"
        /// scrypt cost for new password hashes.
        public var passwordParameters = SecretHashing.ScryptParameters.standard
        /// How long a session lasts after login, whatever happens (12 hours).
        public var sessionLifetime: Duration = .seconds(12 * 3600)
        /// A PostgreSQL database shared by every instance; nil keeps `identity.sqlite` in the data directory.
        public var database: PostgresLocation?
        /// The keys that sign page tokens; every instance must share them.
        public var pageTokens = PageTokenKeys.random()
        /// Checks and hashes passwords; nil uses scrypt with `passwordParameters`.
        public var passwords: (any PasswordChecking)?
        /// The time sessions, invites and sign-in budgets are measured in, and the mail relay waits on.
        public var clock: any ServiceClock = .system

        /// Settings storing data under `dataDirectory`.
        public init(dataDirectory: String) {
            self.dataDirectory = dataDirectory
        }
    }

    /// The RPC service to host.
    public let service: any RPCService
    /// Workers to run beside the server (the invite mailer).
    public let workers: [any Service]
    /// The database; run it as a service listed before the server so it closes last.
    public let database: ServiceDatabase

    /// Opens (and migrates) the database and builds the service.
    public static func start(settings: Settings, logger: Logger) async throws -> IdentityComponent {
        let location =
            settings.database.map(DatabaseLocation.postgres)
            ?? .sqlite(path: (settings.dataDirectory as NSString).appendingPathComponent("identity.sqlite"))
        let acceptLink = try InviteLinkTemplate(settings.acceptURL)
        let database = try await ServiceDatabase.open(
            location, name: "identity", migrations: IdentityMigrations.all, logger: logger)
        var sessions = SessionPolicy()
        sessions.lifetime = Int64(settings.sessionLifetime / .milliseconds(1))
        let identityStore = IdentityStore(database: database, sessionPolicy: sessions)
        let transport: any MailTransport
        if let smtp = settings.smtpServer {
            let parts = smtp.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else {
                throw RPCError(.invalidArgument, "smtp server: expected host:port, not \(smtp)")
            }
            transport = SMTPMailTransport(host: String(parts[0]), port: port)
        } else {
            transport = try SpoolMailTransport(
                folder: (settings.dataDirectory as NSString).appendingPathComponent("mail-spool"))
        }
        let mailer = InviteMail.relay(
            database: database, transport: transport, from: settings.mailFrom, acceptLink: acceptLink,
            clock: settings.clock,
            logger: logger)
        let handler = IdentityServiceHandler(
            store: identityStore,
            passwords: settings.passwords ?? PasswordHasher(parameters: settings.passwordParameters),
            clock: settings.clock, pageTokens: settings.pageTokens)
        let noticeMailer = NoticeMail.relay(
            database: database, transport: transport, from: settings.mailFrom, clock: settings.clock, logger: logger)
        return IdentityComponent(service: handler, workers: [mailer, noticeMailer], database: database)
    }
}

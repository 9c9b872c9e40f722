import ArgumentParser
import Foundation
import Logging
import PortalApp
import PortalAudit
import PortalHTTP2
import PortalIdentity
import PortalRPC
import PortalStorage
import PortalTime
import PortalTracing
import PortalWeb
import ServiceLifecycle

/// `portal`: runs one service of the End Customer Portal, or all of them with `portal dev`.
@main
struct PortalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portal",
        abstract: "End Customer Portal services.",
        subcommands: [Gateway.self, Entitlements.self, Identity.self, Audit.self, Dev.self])
}

/// Options every service subcommand takes; each falls back to a `PORTAL_...` environment variable.
struct ServiceOptions: ParsableArguments {
    @Option(help: "Address to listen on (env PORTAL_HOST).")
    var host: String = ProcessInfo.processInfo.environment["PORTAL_HOST"] ?? "0.0.0.0"

    @Option(help: "Port to listen on; defaults to the service's port (env PORTAL_PORT).")
    var port: Int?

    @Option(name: .customLong("data-dir"), help: "Folder for the service's database (env PORTAL_DATA_DIR).")
    var dataDirectory: String = ProcessInfo.processInfo.environment["PORTAL_DATA_DIR"] ?? "data"

    @Option(
        name: .customLong("log-level"),
        help: "trace, debug, info, notice, warning, error or critical (env PORTAL_LOG_LEVEL).")
    var logLevel: String = ProcessInfo.processInfo.environment["PORTAL_LOG_LEVEL"] ?? "info"

    @Option(
        help:
            "SMTP server host:port for invite mail; without it mail is spooled under the data directory (env PORTAL_SMTP)."
    )
    var smtp: String?

    @Option(
        name: .customLong("audit-address"),
        help:
            "The audit service's host:port (several instances: comma-separated, called in turn), where audit events are delivered (env PORTAL_AUDIT_ADDRESS; default 127.0.0.1:50053)."
    )
    var auditAddress: String?

    @Option(
        name: .customLong("admin-port"),
        help: "Port for /metrics, /healthz and /readyz over HTTP (env PORTAL_ADMIN_PORT; none by default).")
    var adminPort: Int?

    @Option(
        name: .customLong("web-port"),
        help:
            "Gateway only: port for browsers — the portal's pages, its API as Connect JSON and CSV downloads, over HTTPS with --tls-cert (env PORTAL_WEB_PORT; none by default)."
    )
    var webPort: Int?

    @Option(
        name: .customLong("site-dir"),
        help:
            "Gateway only, for working on the web portal: serve its files from this folder (Sources/PortalWeb/Site), read at each request, instead of the copy built into the binary (env PORTAL_SITE_DIR)."
    )
    var siteDirectory: String?

    @Option(
        name: .customLong("invite-url"),
        help:
            "Identity: the accept link in invite mail, an http(s) URL in which {secret} stands for the invite's secret, such as https://portal.example.com/accept-invite?code={secret} (env PORTAL_INVITE_URL)."
    )
    var inviteURL: String?

    @Option(
        name: .customLong("session-lifetime"),
        help: "Seconds a session lasts after login (identity; env PORTAL_SESSION_LIFETIME; default 43200).")
    var sessionLifetime: Int?

    @Option(
        name: .customLong("identity-address"),
        help:
            "The identity service's host:port (several instances: comma-separated), for the gateway and for entitlements' expiry notices (env PORTAL_IDENTITY_ADDRESS; default 127.0.0.1:50052)."
    )
    var identityAddress: String?

    @Option(
        name: .customLong("entitlements-address"),
        help:
            "The entitlements service's host:port (several instances: comma-separated), for the gateway (env PORTAL_ENTITLEMENTS_ADDRESS; default 127.0.0.1:50051)."
    )
    var entitlementsAddress: String?

    @Option(
        name: .customLong("database"),
        help:
            "postgres://user:password@host:port/database[?sslmode=…] shared by every instance of the service; without it an SQLite file in --data-dir (env PORTAL_DATABASE_URL)."
    )
    var databaseURL: String?

    @Option(
        name: .customLong("tls-cert"),
        help: "PEM certificate chain: serve TLS 1.3 with ALPN h2, reloaded when the file changes (env PORTAL_TLS_CERT)."
    )
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert (env PORTAL_TLS_KEY).")
    var tlsKey: String?

    @Option(
        name: .customLong("tls-client-ca"),
        help:
            "Require client certificates issued by this PEM CA on every call but health checks (env PORTAL_TLS_CLIENT_CA)."
    )
    var tlsClientCA: String?

    @Option(
        name: .customLong("tls-ca"),
        help:
            "Call other services over TLS, verifying them with this PEM CA and presenting --tls-cert (env PORTAL_TLS_CA)."
    )
    var tlsCA: String?

    @Option(
        name: .customLong("tls-min-version"),
        help: "Lowest TLS version accepted: 1.3, or 1.2 (env PORTAL_TLS_MIN_VERSION; default 1.3).")
    var tlsMinimumVersion: String?

    @Option(
        name: .customLong("gateway-identity"),
        help:
            "DNS name in the gateway's client certificate; only it may pass caller metadata to a backend (env PORTAL_GATEWAY_IDENTITY; default gateway)."
    )
    var gatewayIdentity: String?

    @Option(
        name: .customLong("page-token-key"),
        help:
            "Secret (32+ bytes) signing page tokens; every instance of a service must share it, or a page token from one is refused by another (env PORTAL_PAGE_TOKEN_KEY; random per process by default)."
    )
    var pageTokenKey: String?

    @Option(
        name: .customLong("previous-page-token-key"),
        help:
            "The page token key being rotated out: its tokens are still accepted (env PORTAL_PREVIOUS_PAGE_TOKEN_KEY).")
    var previousPageTokenKey: String?

    @Option(
        name: .customLong("internal-credential"),
        help:
            "Secret (32+ bytes) the gateway presents to the backends; without mutual TLS a backend believes who the caller is only from loopback or with it. Give every service the same value (env PORTAL_INTERNAL_CREDENTIAL)."
    )
    var internalCredential: String?

    @Option(
        name: .customLong("otlp-endpoint"),
        help:
            "Send traces to this OpenTelemetry collector (OTLP/gRPC): host:port, http://host:port or https://host:port (env PORTAL_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT; no tracing without one)."
    )
    var otlpEndpoint: String?

    @Option(
        name: .customLong("trace-sampling-ratio"),
        help:
            "Share of new traces recorded, 0 to 1; a call that arrives with a trace follows its caller's decision (env PORTAL_TRACE_SAMPLING_RATIO, or OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG; default 1)."
    )
    var traceSamplingRatio: Double?

    @Flag(name: .customLong("testing-clock"), help: .private)
    var testingClock = false

    @Option(
        name: .customLong("expiry-notice-days"),
        help:
            "Entitlements: days before an entitlement with unactivated licenses expires that its organization's Admins are mailed, comma-separated (env PORTAL_EXPIRY_NOTICE_DAYS; default 30,7,1; a last notice goes out when it expires; \"none\" for that one only)."
    )
    var expiryNoticeDays: String?

    /// `--expiry-notice-days`, else `PORTAL_EXPIRY_NOTICE_DAYS`, else 30, 7 and 1.
    func noticeDays() throws -> [Int] {
        guard let text = expiryNoticeDays ?? ProcessInfo.processInfo.environment["PORTAL_EXPIRY_NOTICE_DAYS"] else {
            return [30, 7, 1]
        }
        if text == "none" { return [] }
        let days = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !days.isEmpty, days.count <= 5, days.allSatisfy({ $0.map { (1...365).contains($0) } ?? false }) else {
            throw ValidationError(
                "--expiry-notice-days: expected up to 5 whole days between 1 and 365, comma-separated (30,7,1), or none; not \(text)"
            )
        }
        return Array(Set(days.compactMap { $0 })).sorted(by: >)
    }

    @Flag(
        name: .customLong("webhook-private-networks"),
        help:
            "Audit: let webhooks reach loopback, private and link-local addresses (plain http only to loopback), for development or deliberate internal endpoints (env PORTAL_WEBHOOK_PRIVATE_NETWORKS=1; refused by default)."
    )
    var webhookPrivateNetworks = false

    @Option(
        name: .customLong("webhook-timeout"),
        help: "Audit: seconds a webhook endpoint has to answer a delivery (env PORTAL_WEBHOOK_TIMEOUT; default 10).")
    var webhookTimeout: Int?

    @Option(
        name: .customLong("webhook-ca-file"),
        help:
            "Audit: a PEM CA file trusted for webhook endpoints' certificates beside the system's (env PORTAL_WEBHOOK_CA_FILE)."
    )
    var webhookCAFile: String?

    /// The audit service's webhook settings from the flags and the environment; the secrets key from
    /// `PORTAL_WEBHOOK_SECRETS_KEY` (base64 of 32 bytes), else the data directory's key file.
    func webhookSettings() throws -> AuditComponent.WebhookSettings {
        let environment = ProcessInfo.processInfo.environment
        var settings = AuditComponent.WebhookSettings()
        settings.allowPrivateNetworks = webhookPrivateNetworks || environment["PORTAL_WEBHOOK_PRIVATE_NETWORKS"] == "1"
        let timeout = webhookTimeout ?? environment["PORTAL_WEBHOOK_TIMEOUT"].flatMap(Int.init) ?? 10
        guard (1...60).contains(timeout) else {
            throw ValidationError("--webhook-timeout: must be between 1 and 60 seconds, not \(timeout)")
        }
        settings.timeout = .seconds(timeout)
        if let file = webhookCAFile ?? environment["PORTAL_WEBHOOK_CA_FILE"] {
            guard FileManager.default.isReadableFile(atPath: file) else {
                throw ValidationError("--webhook-ca-file: cannot read \(file)")
            }
            settings.trustRoots = [file]
        }
        if let encoded = environment["PORTAL_WEBHOOK_SECRETS_KEY"] {
            guard let key = Data(base64Encoded: encoded), key.count == 32 else {
                throw ValidationError(
                    "PORTAL_WEBHOOK_SECRETS_KEY: must be 32 bytes in base64 (openssl rand -base64 32)")
            }
            settings.secretsKey = [UInt8](key)
        }
        return settings
    }

    /// `--internal-credential`, else `PORTAL_INTERNAL_CREDENTIAL`.
    var internalCredentialValue: String? {
        internalCredential ?? ProcessInfo.processInfo.environment["PORTAL_INTERNAL_CREDENTIAL"]
    }

    /// Tracing for a process running `kinds`, from the flags and the environment; nil when off.
    func tracingSettings(for kinds: [PortalServiceKind]) throws -> TracingSettings? {
        do {
            return try TracingSettings.resolve(
                endpoint: otlpEndpoint, samplingRatio: traceSamplingRatio,
                serviceName: kinds.count == 1 ? "portal-\(kinds[0].rawValue)" : "portal")
        } catch let error as TracingSettingsError {
            throw ValidationError(error.description)
        }
    }

    func validate() throws {
        _ = try tracingSettings(for: [])
        if testingClock, adminPortNumber == nil {
            throw ValidationError("--testing-clock: the clock is moved through the admin port; give --admin-port")
        }
        if let credential = internalCredentialValue, credential.utf8.count < 32 {
            throw ValidationError(
                "--internal-credential: must be at least 32 bytes (for example `openssl rand -base64 32`)")
        }
        _ = try tls()
        _ = try database()
        _ = try pageTokens()
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: unknown level \(logLevel)")
        }
        if let smtp = smtpServer,
            smtp.split(separator: ":").count != 2 || Int(smtp.split(separator: ":").last ?? "") == nil
        {
            throw ValidationError("--smtp: expected host:port, not \(smtp)")
        }
        if let port, !(0...65535).contains(port) {
            throw ValidationError("--port: \(port) is not a TCP port")
        }
        if let adminPort = adminPortNumber, !(1...65535).contains(adminPort) {
            throw ValidationError("--admin-port: \(adminPort) is not a TCP port")
        }
        if let webPort = webPortNumber, !(1...65535).contains(webPort) {
            throw ValidationError("--web-port: \(webPort) is not a TCP port")
        }
        if let lifetime = sessionLifetimeSeconds, lifetime < 1 {
            throw ValidationError("--session-lifetime: must be at least 1 second, not \(lifetime)")
        }
        if let inviteURL { try Self.checkInviteURL(inviteURL) }
        if let siteDirectory { try Self.checkSiteDirectory(siteDirectory) }
    }

    /// Fails with a usage error unless `url` is an http(s) URL containing `{secret}`.
    static func checkInviteURL(_ url: String) throws {
        do {
            _ = try InviteLinkTemplate(url)
        } catch let error as RPCError {
            throw ValidationError("--invite-url: \(error.message)")
        }
    }

    /// Fails with a usage error unless `path` is a folder the web listener can serve.
    static func checkSiteDirectory(_ path: String) throws {
        do {
            _ = try SiteFolder(path: path)
        } catch let error as RPCError {
            throw ValidationError(error.message)
        }
    }

    /// The TLS options (each falling back to its `PORTAL_TLS_...` variable), or nil when TLS is off.
    func tls() throws -> ServiceTLS? {
        let environment = ProcessInfo.processInfo.environment
        let certificate = tlsCertificate ?? environment["PORTAL_TLS_CERT"]
        let key = tlsKey ?? environment["PORTAL_TLS_KEY"]
        let clientCA = tlsClientCA ?? environment["PORTAL_TLS_CLIENT_CA"]
        let ca = tlsCA ?? environment["PORTAL_TLS_CA"]
        let minimumVersion = tlsMinimumVersion ?? environment["PORTAL_TLS_MIN_VERSION"]
        let gateway = gatewayIdentity ?? environment["PORTAL_GATEWAY_IDENTITY"]
        guard let certificate, let key else {
            if certificate != nil || key != nil {
                throw ValidationError("--tls-cert and --tls-key go together; one of them is missing")
            }
            if clientCA != nil || ca != nil || minimumVersion != nil {
                throw ValidationError("--tls-client-ca, --tls-ca and --tls-min-version need --tls-cert and --tls-key")
            }
            return nil
        }
        var tls = ServiceTLS(certificateFile: certificate, keyFile: key)
        tls.clientCAFile = clientCA
        tls.caFile = ca
        if let minimumVersion {
            guard let version = TLSVersion(rawValue: minimumVersion) else {
                throw ValidationError("--tls-min-version: expected 1.2 or 1.3, not \(minimumVersion)")
            }
            tls.minimumVersion = version
        }
        if let gateway {
            guard !gateway.isEmpty else { throw ValidationError("--gateway-identity: must not be empty") }
            tls.gatewayIdentity = gateway
        }
        return tls
    }

    /// `--database`, else `PORTAL_DATABASE_URL`, parsed; nil keeps SQLite.
    func database() throws -> PostgresLocation? {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["PORTAL_DATABASE_URL"], !url.isEmpty else {
            return nil
        }
        do {
            guard case .postgres(let location) = try DatabaseLocation.postgres(url: url) else { return nil }
            return location
        } catch {
            throw ValidationError("--\(error)")
        }
    }

    /// The page token keys from `--page-token-key` and `--previous-page-token-key` (or their
    /// variables); a random key of this process without them.
    func pageTokens() throws -> PageTokenKeys {
        let environment = ProcessInfo.processInfo.environment
        let previous = (previousPageTokenKey ?? environment["PORTAL_PREVIOUS_PAGE_TOKEN_KEY"]).map { [$0] } ?? []
        guard let key = pageTokenKey ?? environment["PORTAL_PAGE_TOKEN_KEY"] else {
            if !previous.isEmpty { throw ValidationError("--previous-page-token-key needs --page-token-key") }
            return .random()
        }
        do {
            return try PageTokenKeys(current: key, previous: previous)
        } catch {
            throw ValidationError("--page-token-key: \(error)")
        }
    }

    /// `--admin-port`, else `PORTAL_ADMIN_PORT`.
    var adminPortNumber: Int? {
        adminPort ?? ProcessInfo.processInfo.environment["PORTAL_ADMIN_PORT"].flatMap(Int.init)
    }

    /// `--web-port`, else `PORTAL_WEB_PORT`.
    var webPortNumber: Int? { webPort ?? ProcessInfo.processInfo.environment["PORTAL_WEB_PORT"].flatMap(Int.init) }

    /// `--site-dir`, else `PORTAL_SITE_DIR`.
    var siteDirectoryPath: String? { siteDirectory ?? ProcessInfo.processInfo.environment["PORTAL_SITE_DIR"] }

    /// `--invite-url`, else `PORTAL_INVITE_URL`.
    var inviteURLValue: String? { inviteURL ?? ProcessInfo.processInfo.environment["PORTAL_INVITE_URL"] }

    /// `--session-lifetime`, else `PORTAL_SESSION_LIFETIME`.
    var sessionLifetimeSeconds: Int? {
        sessionLifetime ?? ProcessInfo.processInfo.environment["PORTAL_SESSION_LIFETIME"].flatMap(Int.init)
    }

    /// `--smtp`, else `PORTAL_SMTP`.
    var smtpServer: String? { smtp ?? ProcessInfo.processInfo.environment["PORTAL_SMTP"] }

    func settings(for kind: PortalServiceKind) throws -> ServiceSettings {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let environmentPort = ProcessInfo.processInfo.environment["PORTAL_PORT"].flatMap(Int.init)
        var settings = ServiceSettings(
            kind: kind, host: host, port: port ?? environmentPort ?? kind.defaultPort, dataDirectory: dataDirectory)
        settings.smtpServer = smtpServer
        settings.sessionLifetime = sessionLifetimeSeconds.map { .seconds($0) }
        settings.adminPort = adminPortNumber
        if kind == .gateway {
            settings.webPort = webPortNumber
            settings.siteDirectory = siteDirectoryPath
            if let siteDirectory = settings.siteDirectory { try Self.checkSiteDirectory(siteDirectory) }
        } else if webPort != nil {
            throw ValidationError("--web-port: only the gateway serves browsers")
        }
        if kind == .identity {
            settings.inviteURL = inviteURLValue
            if let inviteURL = settings.inviteURL { try Self.checkInviteURL(inviteURL) }
        } else if inviteURL != nil {
            throw ValidationError("--invite-url: only the identity service sends invite mail")
        }
        settings.tls = try tls()
        settings.database = try database()
        settings.pageTokens = try pageTokens()
        settings.internalCredential = internalCredentialValue
        if kind == .audit { settings.webhooks = try webhookSettings() }
        if kind == .entitlements { settings.expiryNoticeDays = try noticeDays() }
        if testingClock { settings.testingClock = OffsetClock() }
        if settings.database != nil, kind == .gateway {
            throw ValidationError(
                "--database: the gateway keeps no data; give the database to entitlements, identity or audit")
        }
        let environment = ProcessInfo.processInfo.environment
        if let address = auditAddress ?? environment["PORTAL_AUDIT_ADDRESS"] { settings.auditAddress = address }
        if let address = identityAddress ?? environment["PORTAL_IDENTITY_ADDRESS"] {
            settings.identityAddress = address
        }
        if let address = entitlementsAddress ?? environment["PORTAL_ENTITLEMENTS_ADDRESS"] {
            settings.entitlementsAddress = address
        }
        return settings
    }

    /// Starts `kinds`; `devCertificates` (a `scripts/dev-certs` folder) gives each its own certificate and mutual TLS.
    ///
    /// With a `portBase` (`portal dev`) the services listen on it and the ports after it, in the
    /// order of their default ports, and their admin ports 1000 above. Every service binds its port
    /// before any of them runs, so a port in use stops the process before it serves or seeds anything.
    /// `webPort` and `inviteURL` replace the gateway's web port and identity's invite link; `webURL`,
    /// where the web portal is reached, is printed with the demo's sign-ins.
    func start(
        _ kinds: [PortalServiceKind], seedDemo: Bool = false, portBase: Int? = nil, devCertificates: String? = nil,
        webPort: Int? = nil,
        webURL: String? = nil, inviteURL: String? = nil
    ) async throws {
        if siteDirectory != nil, !kinds.contains(.gateway) {
            throw ValidationError("--site-dir: only the gateway serves browsers")
        }
        if kinds.contains(.gateway), siteDirectoryPath != nil, (webPort ?? webPortNumber) == nil {
            throw ValidationError("--site-dir: the gateway serves the portal's files only on its --web-port")
        }
        let tracingSettings = try tracingSettings(for: kinds)
        PortalRuntime.bootstrapLogging(
            level: Logger.Level(rawValue: logLevel) ?? .info, traceIDs: tracingSettings != nil)
        PortalRuntime.bootstrapMetrics()
        let logger = Logger(label: "portal")
        let tracing = try tracingSettings.map { try TracingSystem.bootstrap($0, logger: logger) }
        // The exporter runs first, so it stops last and sends the spans of everything else's shutdown.
        var services: [any Service] = tracing.map { [$0.exporter] } ?? []
        for kind in kinds {
            var kindSettings = try settings(for: kind)
            kindSettings.tracing = tracing
            if let portBase {
                kindSettings.port = kind.port(base: portBase)
                kindSettings.adminPort = kind.port(base: portBase) + 1000
            }
            if let devCertificates { kindSettings.tls = Self.devTLS(kind, folder: devCertificates) }
            if kind == .gateway, let webPort { kindSettings.webPort = webPort }
            if kind == .identity, let inviteURL { kindSettings.inviteURL = inviteURL }
            do {
                services += try await PortalRuntime.makeServices(kindSettings, logger: logger)
            } catch {
                await PortalRuntime.abandon(services)
                throw error
            }
        }
        if seedDemo {
            let tls = devCertificates.map { Self.devTLS(.gateway, folder: $0) }
            services.append(
                DemoSeeder(
                    dataDirectory: dataDirectory, host: host,
                    portBase: portBase ?? PortalServiceKind.gateway.defaultPort, tls: tls,
                    webURL: webURL, logger: logger))
        }
        try await PortalRuntime.run(services, logger: logger)
    }
}

extension ServiceOptions {
    /// Mutual TLS for `kind` from a `scripts/dev-certs` folder: its own certificate, the folder's CA both
    /// ways; backends require client certificates, the gateway (the public entry) does not.
    static func devTLS(_ kind: PortalServiceKind, folder: String) -> ServiceTLS {
        let path = { (name: String) in (folder as NSString).appendingPathComponent(name) }
        var tls = ServiceTLS(certificateFile: path("\(kind.rawValue).crt"), keyFile: path("\(kind.rawValue).key"))
        tls.caFile = path("ca.crt")
        if kind != .gateway { tls.clientCAFile = path("ca.crt") }
        return tls
    }
}

/// `portal gateway`.
struct Gateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (the portal facade), port 50050.")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.start([.gateway]) }
}

/// `portal entitlements`.
struct Entitlements: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the entitlements service, port 50051.")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.start([.entitlements]) }
}

/// `portal identity`.
struct Identity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the identity and members service, port 50052.")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.start([.identity]) }
}

/// `portal audit`.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the audit service, port 50053.")
    @OptionGroup var options: ServiceOptions
    func run() async throws { try await options.start([.audit]) }
}

/// `portal dev`: all four services in one process on their default ports, loopback only, with a
/// demo organization seeded into a fresh data directory.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run all four services in one process on this machine, with demo data.")

    @Flag(name: .customLong("no-demo"), help: "Do not seed the demo organization into a fresh data directory.")
    var noDemo = false

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("data-dir"), help: "Folder for the databases.")
    var dataDirectory: String = ProcessInfo.processInfo.environment["PORTAL_DATA_DIR"] ?? "data"

    @Option(name: .customLong("log-level"), help: "Log level.")
    var logLevel: String = "info"

    @Option(
        name: .customLong("tls"),
        help: "Serve mutual TLS with the certificates scripts/dev-certs wrote into this folder (cleartext without it).")
    var tlsFolder: String?

    @Option(
        name: .customLong("port-base"),
        help:
            "First port: the gateway listens on it, entitlements, identity and audit on the next three, their admin ports 1000 above (default 50050)."
    )
    var portBase: Int = PortalServiceKind.gateway.defaultPort

    @Option(
        name: .customLong("web-port"),
        help: "Port of the web portal (default 8080; with --port-base, the port after audit's).")
    var webPort: Int?

    @Option(
        name: .customLong("invite-url"),
        help:
            "The accept link in invite mail, an http(s) URL in which {secret} stands for the invite's secret (env PORTAL_INVITE_URL; default: the web portal's /accept-invite?code={secret})."
    )
    var inviteURL: String?

    @Option(
        name: .customLong("site-dir"),
        help:
            "For working on the web portal: serve its files from this folder (Sources/PortalWeb/Site), read at each request, instead of the copy built into the binary (env PORTAL_SITE_DIR)."
    )
    var siteDirectory: String?

    @Option(
        name: .customLong("otlp-endpoint"),
        help:
            "Send traces to this OpenTelemetry collector (OTLP/gRPC), host:port or http(s)://host:port (env PORTAL_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; off without one)."
    )
    var otlpEndpoint: String?

    /// Where the web portal listens.
    var webPortNumber: Int {
        webPort
            ?? (portBase == PortalServiceKind.gateway.defaultPort
                ? 8080 : PortalServiceKind.audit.port(base: portBase) + 1)
    }

    /// Where the services reach each other: `host`, or loopback when they listen everywhere.
    var reachableHost: String {
        ["0.0.0.0", "::"].contains(host) ? "127.0.0.1" : host.contains(":") ? "[\(host)]" : host
    }

    /// The web portal's address, `http://127.0.0.1:8080/`; with `--tls`, `https://localhost:8080/`, as
    /// the dev certificates name localhost.
    var webURL: String {
        tlsFolder != nil ? "https://localhost:\(webPortNumber)/" : "http://\(reachableHost):\(webPortNumber)/"
    }

    /// The accept link in invite mail: `--invite-url`, else `PORTAL_INVITE_URL`, else the web portal's own page.
    var inviteURLValue: String {
        inviteURL ?? ProcessInfo.processInfo.environment["PORTAL_INVITE_URL"]
            ?? "\(webURL)accept-invite?code=\(InviteLinkTemplate.placeholder)"
    }

    func validate() throws {
        guard (1...(65535 - 1003)).contains(portBase) else {
            throw ValidationError(
                "--port-base: \(portBase) leaves no room for the four services and their admin ports (at most \(65535 - 1003))"
            )
        }
        if let webPort, !(1...65535).contains(webPort) {
            throw ValidationError("--web-port: \(webPort) is not a TCP port")
        }
        if let inviteURL { try ServiceOptions.checkInviteURL(inviteURL) }
        if let siteDirectory { try ServiceOptions.checkSiteDirectory(siteDirectory) }
        if !noDemo, !["127.0.0.1", "localhost", "::1"].contains(host) {
            throw ValidationError(
                "--host: the demo organization has well-known passwords; serve it on loopback only, or pass --no-demo")
        }
    }

    func run() async throws {
        if ProcessInfo.processInfo.environment["PORTAL_DATABASE_URL"] != nil {
            throw ValidationError(
                "portal dev keeps each service's SQLite file in --data-dir; unset PORTAL_DATABASE_URL, or run the services one by one with --database"
            )
        }
        var options = try ServiceOptions.parse([])
        options.host = host
        options.dataDirectory = dataDirectory
        options.logLevel = logLevel
        options.port = nil
        options.webPort = nil
        options.inviteURL = nil
        options.siteDirectory = siteDirectory
        options.otlpEndpoint = otlpEndpoint
        options.webhookPrivateNetworks = true  // development: receivers on this machine
        // The services find each other where they listen (loopback when they listen everywhere).
        let reachable = reachableHost
        options.auditAddress = "\(reachable):\(PortalServiceKind.audit.port(base: portBase))"
        options.identityAddress = "\(reachable):\(PortalServiceKind.identity.port(base: portBase))"
        options.entitlementsAddress = "\(reachable):\(PortalServiceKind.entitlements.port(base: portBase))"
        try await options.start(
            PortalServiceKind.allCases, seedDemo: !noDemo, portBase: portBase, devCertificates: tlsFolder,
            webPort: webPortNumber,
            webURL: webURL, inviteURL: inviteURLValue)
    }
}

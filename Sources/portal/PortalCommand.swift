import ArgumentParser
import Foundation
import Logging
import PortalApp
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

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (env PORTAL_LOG_LEVEL).")
    var logLevel: String = ProcessInfo.processInfo.environment["PORTAL_LOG_LEVEL"] ?? "info"

    @Option(help: "SMTP server host:port for invite mail; without it mail is spooled under the data directory (env PORTAL_SMTP).")
    var smtp: String?

    @Option(name: .customLong("audit-address"), help: "The audit service's host:port, where audit events are delivered (env PORTAL_AUDIT_ADDRESS; default 127.0.0.1:50053).")
    var auditAddress: String?

    @Option(name: .customLong("admin-port"), help: "Port for /metrics, /healthz and /readyz over HTTP (env PORTAL_ADMIN_PORT; none by default).")
    var adminPort: Int?

    @Option(name: .customLong("session-lifetime"), help: "Seconds a session lasts after login (identity; env PORTAL_SESSION_LIFETIME; default 43200).")
    var sessionLifetime: Int?

    @Option(name: .customLong("identity-address"), help: "The identity service's host:port, for the gateway (env PORTAL_IDENTITY_ADDRESS; default 127.0.0.1:50052).")
    var identityAddress: String?

    @Option(name: .customLong("entitlements-address"), help: "The entitlements service's host:port, for the gateway (env PORTAL_ENTITLEMENTS_ADDRESS; default 127.0.0.1:50051).")
    var entitlementsAddress: String?

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: unknown level \(logLevel)")
        }
        if let smtp = smtpServer, smtp.split(separator: ":").count != 2 || Int(smtp.split(separator: ":").last ?? "") == nil {
            throw ValidationError("--smtp: expected host:port, not \(smtp)")
        }
        if let port, !(0...65535).contains(port) {
            throw ValidationError("--port: \(port) is not a TCP port")
        }
        if let adminPort = adminPortNumber, !(1...65535).contains(adminPort) {
            throw ValidationError("--admin-port: \(adminPort) is not a TCP port")
        }
        if let lifetime = sessionLifetimeSeconds, lifetime < 1 {
            throw ValidationError("--session-lifetime: must be at least 1 second, not \(lifetime)")
        }
    }

    /// `--admin-port`, else `PORTAL_ADMIN_PORT`.
    var adminPortNumber: Int? { adminPort ?? ProcessInfo.processInfo.environment["PORTAL_ADMIN_PORT"].flatMap(Int.init) }

    /// `--session-lifetime`, else `PORTAL_SESSION_LIFETIME`.
    var sessionLifetimeSeconds: Int? { sessionLifetime ?? ProcessInfo.processInfo.environment["PORTAL_SESSION_LIFETIME"].flatMap(Int.init) }

    /// `--smtp`, else `PORTAL_SMTP`.
    var smtpServer: String? { smtp ?? ProcessInfo.processInfo.environment["PORTAL_SMTP"] }

    func settings(for kind: PortalServiceKind) throws -> ServiceSettings {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let environmentPort = ProcessInfo.processInfo.environment["PORTAL_PORT"].flatMap(Int.init)
        var settings = ServiceSettings(kind: kind, host: host, port: port ?? environmentPort ?? kind.defaultPort, dataDirectory: dataDirectory)
        settings.smtpServer = smtpServer
        settings.sessionLifetime = sessionLifetimeSeconds.map { .seconds($0) }
        settings.adminPort = adminPortNumber
        let environment = ProcessInfo.processInfo.environment
        if let address = auditAddress ?? environment["PORTAL_AUDIT_ADDRESS"] { settings.auditAddress = address }
        if let address = identityAddress ?? environment["PORTAL_IDENTITY_ADDRESS"] { settings.identityAddress = address }
        if let address = entitlementsAddress ?? environment["PORTAL_ENTITLEMENTS_ADDRESS"] { settings.entitlementsAddress = address }
        return settings
    }

    func start(_ kinds: [PortalServiceKind], seedDemo: Bool = false, devAdminPorts: Bool = false) async throws {
        PortalRuntime.bootstrapLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        PortalRuntime.bootstrapMetrics()
        let logger = Logger(label: "portal")
        var services: [any Service] = []
        for kind in kinds {
            var kindSettings = try settings(for: kind)
            if devAdminPorts { kindSettings.adminPort = kind.defaultPort + 1000 }
            services += try await PortalRuntime.makeServices(kindSettings, logger: logger)
        }
        if seedDemo {
            services.append(DemoSeeder(dataDirectory: dataDirectory, host: host, logger: logger))
        }
        try await PortalRuntime.run(services, logger: logger)
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
    static let configuration = CommandConfiguration(abstract: "Run all four services in one process on this machine, with demo data.")

    @Flag(name: .customLong("no-demo"), help: "Do not seed the demo organization into a fresh data directory.")
    var noDemo = false

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("data-dir"), help: "Folder for the databases.")
    var dataDirectory: String = ProcessInfo.processInfo.environment["PORTAL_DATA_DIR"] ?? "data"

    @Option(name: .customLong("log-level"), help: "Log level.")
    var logLevel: String = "info"

    func validate() throws {
        if !noDemo, !["127.0.0.1", "localhost", "::1"].contains(host) {
            throw ValidationError("--host: the demo organization has well-known passwords; serve it on loopback only, or pass --no-demo")
        }
    }

    func run() async throws {
        var options = try ServiceOptions.parse([])
        options.host = host
        options.dataDirectory = dataDirectory
        options.logLevel = logLevel
        options.port = nil
        // The services find each other where they listen (loopback when they listen everywhere).
        let reachable = ["0.0.0.0", "::"].contains(host) ? "127.0.0.1" : host.contains(":") ? "[\(host)]" : host
        options.auditAddress = "\(reachable):\(PortalServiceKind.audit.defaultPort)"
        options.identityAddress = "\(reachable):\(PortalServiceKind.identity.defaultPort)"
        options.entitlementsAddress = "\(reachable):\(PortalServiceKind.entitlements.defaultPort)"
        try await options.start(PortalServiceKind.allCases, seedDemo: !noDemo, devAdminPorts: true)
    }
}

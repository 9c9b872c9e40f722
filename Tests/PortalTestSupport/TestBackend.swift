import Foundation
import Logging
import PortalStorage
import PostgresNIO

/// The databases the store tests run on: SQLite always, and PostgreSQL when
/// `PORTAL_TEST_POSTGRES_URL` names a server the tests may create databases on.
public enum TestBackend: String, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    /// The backends to run each test on.
    public static var available: [TestBackend] {
        ProcessInfo.processInfo.environment["PORTAL_TEST_POSTGRES_URL"] == nil ? [.sqlite] : [.sqlite, .postgres]
    }

    public var description: String { rawValue }

    /// A fresh, empty PostgreSQL database for one test; nil on SQLite (the test's data folder holds the file).
    public func freshDatabase() async throws -> PostgresLocation? {
        guard self == .postgres else { return nil }
        guard let url = ProcessInfo.processInfo.environment["PORTAL_TEST_POSTGRES_URL"],
            case .postgres(var server) = try DatabaseLocation.postgres(url: url)
        else { return nil }
        let name = "portal_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())"
        var configuration = PostgresConnection.Configuration(
            host: server.host, port: server.port, username: server.user, password: server.password,
            database: server.database, tls: .disable)
        configuration.options.requireBackendKeyData = false
        var logger = Logger(label: "test-database")
        logger.logLevel = .critical
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        try await connection.close()
        server.database = name
        server.tls = .disable
        server.poolSize = 4
        return server
    }
}

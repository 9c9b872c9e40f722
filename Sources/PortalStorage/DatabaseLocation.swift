import Foundation

/// Where a service keeps its data: an SQLite file of its own, or a PostgreSQL database that every
/// instance of the service shares.
public enum DatabaseLocation: Sendable, Hashable {
    /// An SQLite file (WAL mode); one process writes it.
    case sqlite(path: String)
    /// A PostgreSQL database.
    case postgres(PostgresLocation)

    /// `postgres://user:password@host:port/database?sslmode=…&sslrootcert=…` (also `postgresql://`),
    /// as libpq reads it: `sslmode` is `disable`, `prefer` (the default), `require` (encrypted,
    /// unverified) or `verify-full` (verified against `sslrootcert` and the host name).
    ///
    /// Throws naming what is wrong; the message never contains the password.
    public static func postgres(url: String) throws -> DatabaseLocation {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? "")
        else {
            throw DatabaseLocationError("database: expected postgres://user:password@host:port/database")
        }
        guard let host = components.host, !host.isEmpty else {
            throw DatabaseLocationError("database: the URL names no host")
        }
        guard let user = components.user, !user.isEmpty else {
            throw DatabaseLocationError("database: the URL names no user")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw DatabaseLocationError("database: the URL names no database") }
        var location = PostgresLocation(host: host, port: components.port ?? 5432, user: user, database: database)
        location.password = components.password?.removingPercentEncoding
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = PostgresLocation.TLSMode(rawValue: item.value ?? "") else {
                    throw DatabaseLocationError(
                        "database: sslmode must be disable, prefer, require or verify-full, not \(item.value ?? "")")
                }
                location.tls = mode
            case "sslrootcert":
                location.rootCertificateFile = item.value
            case "pool_size":
                // Two at least: a migration or a lease holds one connection while the work uses another.
                guard let size = item.value.flatMap(Int.init), (2...200).contains(size) else {
                    throw DatabaseLocationError("database: pool_size must be 2 to 200, not \(item.value ?? "")")
                }
                location.poolSize = size
            default:
                throw DatabaseLocationError(
                    "database: unknown URL parameter \(item.name) (sslmode, sslrootcert, pool_size)")
            }
        }
        if location.tls == .verifyFull, location.rootCertificateFile == nil {
            throw DatabaseLocationError("database: sslmode=verify-full needs sslrootcert=<CA file>")
        }
        return .postgres(location)
    }
}

/// A PostgreSQL server, database and credentials, and how to secure the connection.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    /// How connections to the server are secured.
    public enum TLSMode: String, Sendable {
        case disable
        case prefer
        case require
        case verifyFull = "verify-full"
    }

    /// The server's host.
    public var host: String
    /// The server's port.
    public var port: Int
    /// The role to connect as.
    public var user: String
    /// The role's password, if it has one.
    public var password: String?
    /// The database.
    public var database: String
    /// TLS to the server.
    public var tls = TLSMode.prefer
    /// The CA that issued the server's certificate (with `verify-full`).
    public var rootCertificateFile: String?
    /// Connections each instance keeps at most.
    public var poolSize = 10

    /// A location; TLS preferred, pool of 10.
    public init(host: String, port: Int, user: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// `postgres://user@host:port/database`, without the password, for logs.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }
}

/// A database failure, described by the database (`PostgreSQL 42P01: relation "x" does not exist`).
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    /// What the database reported.
    public let description: String
}

/// The database could not be reached (its server is down, restarting or unreachable): the work was
/// not done, or — for a transaction whose connection broke while committing — may have been; callers
/// retry with the same idempotency key.
public struct DatabaseUnavailableError: Error, CustomStringConvertible, Sendable {
    /// Why, as the database driver reported it.
    public let description: String
}

/// A transaction kept failing on concurrent ones (PostgreSQL serialization failures or deadlocks)
/// through every retry: nothing was changed; the caller may try again.
public struct DatabaseConflictError: Error, CustomStringConvertible, Sendable {
    /// What the database reported last.
    public let description: String
}

/// A row was refused by a unique index (PostgreSQL's unique violation): nothing was changed. Stores
/// that insert first and look up only when refused catch it by `constraint`.
public struct DatabaseDuplicateError: Error, CustomStringConvertible, Sendable {
    /// The unique index or constraint that refused the row.
    public let constraint: String
    /// What the database reported.
    public let description: String
}

/// A database location that cannot be used, with the reason.
public struct DatabaseLocationError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

import PortalStorage
import Testing

@Suite("PostgreSQL URLs")
struct DatabaseLocationTests {
    static func location(_ url: String) throws -> PostgresLocation {
        let parsed = try DatabaseLocation.postgres(url: url)
        guard case .postgres(let location) = parsed else { throw CancellationError() }
        return location
    }

    @Test func aFullURLIsReadAsLibpqWouldAndDescribedWithoutItsPassword() throws {
        let location = try Self.location(
            "postgresql://portal:s%40cret@db.example.com:6432/portal_audit?sslmode=verify-full&sslrootcert=/etc/ca.crt&pool_size=25"
        )
        #expect(location.host == "db.example.com")
        #expect(location.port == 6432)
        #expect(location.user == "portal")
        #expect(location.password == "s@cret")
        #expect(location.database == "portal_audit")
        #expect(location.tls == .verifyFull)
        #expect(location.rootCertificateFile == "/etc/ca.crt")
        #expect(location.poolSize == 25)
        #expect(location.description == "postgres://portal@db.example.com:6432/portal_audit")
    }

    @Test func defaultsArePort5432PreferredTLSAndTenConnections() throws {
        let location = try Self.location("postgres://portal@localhost/portal")
        #expect((location.port, location.tls, location.poolSize, location.password) == (5432, .prefer, 10, nil))
    }

    @Test(arguments: [
        ("mysql://portal@localhost/portal", "expected postgres://"),
        ("postgres://localhost/portal", "names no user"),
        ("postgres://portal@localhost/", "names no database"),
        (
            "postgres://portal@localhost/portal?sslmode=allow",
            "sslmode must be disable, prefer, require or verify-full, not allow"
        ),
        ("postgres://portal@localhost/portal?sslmode=verify-full", "sslmode=verify-full needs sslrootcert"),
        ("postgres://portal@localhost/portal?pool_size=1", "pool_size must be 2 to 200, not 1"),
        ("postgres://portal@localhost/portal?connect_timeout=5", "unknown URL parameter connect_timeout"),
    ])
    func unusableURLsAreRefusedSayingWhy(url: String, reason: String) {
        do {
            _ = try DatabaseLocation.postgres(url: url)
            Issue.record("\(url) was accepted")
        } catch {
            #expect("\(error)".contains(reason), "\(error)")
            #expect(!"\(error)".contains("s3cret"))
        }
    }
}

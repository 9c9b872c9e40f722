import Foundation
import PortalCrypto
import PortalRPC
import SQLKit

extension IdentityStore {
    /// The member with this email in the organization, with their password hash; nil when none.
    func credentials(organizationID: String, email: String) async throws -> (MemberRecord, passwordHash: String)? {
        try await database.read { database in
            guard
                let row = try await database.raw(
                    """
                    SELECT \(unsafeRaw: MemberRecord.columns), password_hash FROM members
                    WHERE org_id = \(bind: organizationID) AND email_key = \(bind: IdentityValidation.emailKey(email))
                    """
                ).first()
            else { return nil }
            return (try MemberRecord(row: row), try row.decode(column: "password_hash", as: String.self))
        }
    }

    /// Every membership of `email`, in any organization, with its password hash and the
    /// organization's name, by organization name; empty when the email is nobody's.
    func credentials(email: String) async throws -> [SignInCandidate] {
        try await database.read { database in
            try await database.raw(
                """
                SELECT m.id, m.org_id, m.email, m.first_name, m.last_name, m.phone, m.role, m.created_at, m.password_hash,
                       o.name AS org_name
                FROM members m JOIN organizations o ON o.id = m.org_id
                WHERE m.email_key = \(bind: IdentityValidation.emailKey(email))
                ORDER BY lower(o.name), o.id
                """
            ).all().map(SignInCandidate.init(row:))
        }
    }

    /// Opens a session for a member whose password was checked; returns the token (stored only hashed).
    func openSession(member: MemberRecord, now: Milliseconds) async throws -> (token: String, expiresAt: Milliseconds) {
        try await database.transaction { [sessionPolicy] database in
            // The member may have been deleted between the password check and now.
            _ = try await Self.member(database, organizationID: member.organizationID, memberID: member.id)
            return try await Self.insertSession(database, member: member, lifetime: sessionPolicy.lifetime, now: now)
        }
    }

    /// Inserts a new session of `member`; returns its token (stored only hashed) and expiry.
    static func insertSession(
        _ database: any SQLDatabase, member: MemberRecord, lifetime: Milliseconds, now: Milliseconds
    ) async throws -> (token: String, expiresAt: Milliseconds) {
        let token = SecretHashing.newToken()
        let expiresAt = now + lifetime
        try await database.raw(
            """
            INSERT INTO sessions (token_hash, member_id, org_id, created_at, expires_at, last_seen_at)
            VALUES (\(bind: Data(SecretHashing.sha256(token))), \(bind: member.id), \(bind: member.organizationID), \(bind: now),
                    \(bind: expiresAt), \(bind: now))
            """
        ).run()
        return (token, expiresAt)
    }

    /// Ends the session of `token`, if any.
    func closeSession(token: String) async throws {
        try await database.transaction { database in
            try await database.raw("DELETE FROM sessions WHERE token_hash = \(bind: Data(SecretHashing.sha256(token)))")
                .run()
        }
    }

    /// The member a token stands for (current role), or `UNAUTHENTICATED`.
    ///
    /// Tokens are looked up by their SHA-256; the lookup is an index probe on a hash, so it reveals
    /// nothing about how close a guess was.
    func authenticate(token: String, now: Milliseconds) async throws -> (MemberRecord, expiresAt: Milliseconds) {
        let tokenHash = Data(SecretHashing.sha256(token))
        let found = try await database.read { database -> (MemberRecord, Milliseconds, Milliseconds)? in
            guard
                let row = try await database.raw(
                    """
                    SELECT m.id, m.org_id, m.email, m.first_name, m.last_name, m.phone, m.role, m.created_at,
                           s.expires_at AS session_expires_at, s.last_seen_at AS session_last_seen_at
                    FROM sessions s JOIN members m ON m.id = s.member_id
                    WHERE s.token_hash = \(bind: tokenHash)
                    """
                ).first()
            else { return nil }
            return (
                try MemberRecord(row: row), try row.decode(column: "session_expires_at", as: Int64.self),
                try row.decode(column: "session_last_seen_at", as: Int64.self)
            )
        }
        guard let (member, expiresAt, lastSeen) = found else {
            throw IdentityError.invalidSession
        }
        guard now < expiresAt, now - lastSeen < sessionPolicy.idleTimeout else {
            try? await closeSession(token: token)
            throw IdentityError.sessionEnded
        }
        if now - lastSeen >= sessionPolicy.touchInterval {
            try await database.transaction { database in
                try await database.raw(
                    "UPDATE sessions SET last_seen_at = \(bind: now) WHERE token_hash = \(bind: tokenHash)"
                ).run()
            }
        }
        return (member, expiresAt)
    }
}

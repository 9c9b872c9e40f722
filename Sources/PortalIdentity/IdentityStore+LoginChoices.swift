import Foundation
import PortalCrypto
import PortalRPC
import SQLKit

extension IdentityStore {
    /// Remembers that a sign-in's email and password were valid in `candidates`' organizations, so
    /// the person can choose one; returns the choice token (random, stored only hashed) and its expiry.
    /// Choices that have expired are dropped on the way.
    func openChoice(
        among candidates: [SignInCandidate], now: Milliseconds
    ) async throws -> (token: String, expiresAt: Milliseconds) {
        let token = SecretHashing.newToken()
        let tokenHash = Data(SecretHashing.sha256(token))
        let expiresAt = now + sessionPolicy.choiceLifetime
        try await database.transaction { database in
            try await database.raw("DELETE FROM login_choices WHERE expires_at <= \(bind: now)").run()
            for candidate in candidates {
                try await database.raw(
                    """
                    INSERT INTO login_choices (token_hash, org_id, member_id, expires_at)
                    VALUES (\(bind: tokenHash), \(bind: candidate.member.organizationID), \(bind: candidate.member.id), \(bind: expiresAt))
                    """
                ).run()
            }
        }
        return (token, expiresAt)
    }

    /// Uses up the choice token `token` to open a session in `organizationID`, one of its
    /// organizations. A used, unknown or expired token, or an organization it did not offer, is
    /// `UNAUTHENTICATED` naming `choice_token`; the token works once, whatever happens next.
    func openSession(
        choiceToken token: String, organizationID: String, now: Milliseconds
    )
        async throws -> (member: MemberRecord, token: String, expiresAt: Milliseconds)
    {
        let tokenHash = Data(SecretHashing.sha256(token))
        let outcome = try await database.transaction {
            [sessionPolicy] database -> Result<(MemberRecord, String, Milliseconds), IdentityError> in
            let rows = try await database.raw(
                """
                SELECT org_id, member_id, expires_at FROM login_choices WHERE token_hash = \(bind: tokenHash)
                """
            ).all()
            guard let first = rows.first else {
                return .failure(.invalidChoice)
            }
            guard try first.decode(column: "expires_at", as: Int64.self) > now else {
                try await database.raw("DELETE FROM login_choices WHERE token_hash = \(bind: tokenHash)").run()
                return .failure(.choiceExpired)
            }
            guard
                let chosen = try rows.first(where: {
                    try $0.decode(column: "org_id", as: String.self) == organizationID
                })
            else {
                return .failure(.organizationNotOffered(organizationID: organizationID))
            }
            try await database.raw("DELETE FROM login_choices WHERE token_hash = \(bind: tokenHash)").run()
            let memberID = try chosen.decode(column: "member_id", as: String.self)
            guard
                let row = try await database.raw(
                    """
                    SELECT \(unsafeRaw: MemberRecord.columns) FROM members WHERE id = \(bind: memberID) AND org_id = \(bind: organizationID)
                    """
                ).first()
            else {
                // Deleted since the password was checked (its choice rows went with it).
                return .failure(.invalidChoice)
            }
            let member = try MemberRecord(row: row)
            let session = try await Self.insertSession(
                database, member: member, lifetime: sessionPolicy.lifetime, now: now)
            return .success((member, session.token, session.expiresAt))
        }
        let (member, sessionToken, expiresAt) = try outcome.get()
        return (member, sessionToken, expiresAt)
    }
}

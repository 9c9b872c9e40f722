import Foundation
import Logging
import PortalAPI
import PortalApp
import PortalCrypto
import PortalHTTP2
import PortalRPC
import PortalTestSupport
import PortalTime
import SQLKit

@testable import PortalIdentity

/// A real identity service on a loopback port with a fresh database (SQLite or PostgreSQL), and a client to it.
struct IdentityHarness: Sendable {
    let client: Portal_Identity_V1_IdentityClient
    let component: IdentityComponent
    let dataDirectory: String

    /// Runs `body` against a fresh service and database on `backend`; everything is torn down afterwards.
    /// `clock` and `passwords` replace the wall clock and the password hasher when given.
    static func run<Result: Sendable>(
        on backend: TestBackend = .sqlite, clock: (any ServiceClock)? = nil, passwords: (any PasswordChecking)? = nil,
        _ body: @Sendable (IdentityHarness) async throws -> Result
    ) async throws -> Result {
        let box = ComponentBox<IdentityComponent>()
        let database = try await backend.freshDatabase()
        return try await withServiceServer(
            .identity,
            start: { directory, logger in
                var settings = IdentityComponent.Settings(dataDirectory: directory)
                settings.database = database
                settings.passwordParameters = .init(n: 1 << 10, r: 8, p: 1)
                settings.passwords = passwords
                if let clock { settings.clock = clock }
                let component = try await IdentityComponent.start(settings: settings, logger: logger)
                box.value = component
                return ServiceComponent(
                    services: [component.service], database: component.database, workers: component.workers)
            }
        ) { channel, directory in
            try await body(
                IdentityHarness(
                    client: Portal_Identity_V1_IdentityClient(channel: channel), component: box.value!,
                    dataDirectory: directory))
        }
    }

    /// The secret of the newest invite mail to `email`: from the outbox while it waits there, from
    /// the mail spool once the relay delivered it (and erased it from the outbox).
    func latestSecret(for email: String) async throws -> String {
        let spool = (dataDirectory as NSString).appendingPathComponent("mail-spool")
        return try await component.database.read { database in
            let rows = try await database.raw(
                "SELECT event_id, payload FROM outbox WHERE topic = 'mail' ORDER BY seq DESC"
            ).all()
            for row in rows {
                let payload = try row.decode(column: "payload", as: Data.self)
                if !payload.isEmpty {
                    guard let mail = try? JSONDecoder().decode(InviteMail.self, from: payload) else { continue }
                    if mail.to.lowercased() == email.lowercased() { return mail.secret }
                    continue
                }
                let file = (spool as NSString).appendingPathComponent(
                    try row.decode(column: "event_id", as: String.self) + ".eml")
                guard let text = try? String(contentsOfFile: file, encoding: .utf8),
                    text.lowercased().contains("\r\nto: \(email.lowercased())\r\n"),
                    let line = text.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("Invite code: ") })
                else { continue }
                return String(line.dropFirst("Invite code: ".count))
            }
            throw RPCError(.notFound, "no queued mail to \(email)")
        }
    }

    /// Audit events queued in the outbox, oldest first.
    func auditEvents() async throws -> [Portal_Audit_V1_NewEvent] {
        try await component.database.read { database in
            try await database.raw("SELECT payload FROM outbox WHERE topic = 'audit' ORDER BY seq").all().map { row in
                try Portal_Audit_V1_NewEvent(serializedBytes: [UInt8](try row.decode(column: "payload", as: Data.self)))
            }
        }
    }

    /// Creates an organization whose first Admin has accepted; returns the organization id and the Admin.
    func organizationWithAdmin(
        name: String = "Acme", email: String = "ada@example.com"
    ) async throws -> (String, Portal_Identity_V1_Member) {
        var create = Portal_Identity_V1_CreateOrganizationRequest()
        create.name = name
        create.firstAdminEmail = email
        create.idempotencyKey = UUID().uuidString
        let organization = try await client.createOrganization(create).organization!
        let admin = try await accept(email: email, firstName: "Ada", lastName: "Lovelace")
        return (organization.organizationID, admin)
    }

    /// Accepts the newest invite to `email`.
    func accept(
        email: String, firstName: String, lastName: String, password: String = "correct horse battery"
    ) async throws -> Portal_Identity_V1_Member {
        var accept = Portal_Identity_V1_AcceptInviteRequest()
        accept.inviteSecret = try await latestSecret(for: email)
        accept.firstName = firstName
        accept.lastName = lastName
        accept.password = password
        return try await client.acceptInvite(accept).member!
    }

    /// Invites `email` with `role` as `actor`.
    func invite(
        _ email: String, role: Portal_Identity_V1_Role, organizationID: String,
        as actor: Portal_Identity_V1_Member? = nil, phone: String = ""
    ) async throws -> Portal_Identity_V1_Invite {
        var request = Portal_Identity_V1_CreateInviteRequest()
        request.organizationID = organizationID
        request.email = email
        request.role = role
        request.phone = phone
        let metadata =
            actor.map { PrincipalMetadata.metadata(memberID: $0.memberID, displayName: $0.displayName) } ?? [:]
        return try await client.createInvite(request, metadata: metadata).invite!
    }

    /// Logs in and returns the session token.
    func login(organizationID: String, email: String, password: String = "correct horse battery") async throws -> String
    {
        var request = Portal_Identity_V1_LoginRequest()
        request.organizationID = organizationID
        request.email = email
        request.password = password
        return try await client.login(request).sessionToken
    }

    /// The principal of a token.
    func authenticate(_ token: String) async throws -> Portal_Identity_V1_Principal {
        var request = Portal_Identity_V1_AuthenticateRequest()
        request.sessionToken = token
        return try await client.authenticate(request).principal!
    }
}

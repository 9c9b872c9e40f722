import Foundation
import PortalAPI
import PortalCrypto
import PortalRPC
import PortalTestSupport
import PortalTime
import SQLKit
import Synchronization
import Testing

@testable import PortalIdentity

/// The real password hasher, counting how many passwords it checks.
final class CountingPasswords: PasswordChecking {
    private let hasher = PasswordHasher(parameters: .init(n: 1 << 10, r: 8, p: 1))
    private let count = Mutex(0)

    var verifications: Int { count.withLock { $0 } }

    func reset() { count.withLock { $0 = 0 } }
    func hash(_ password: String) async throws -> String { try await hasher.hash(password) }

    func verify(_ password: String, against encodedHash: String) async throws -> Bool {
        count.withLock { $0 += 1 }
        return try await hasher.verify(password, against: encodedHash)
    }
}

extension IdentityHarness {
    /// Signs in with email and password alone.
    func login(
        email: String, password: String = "correct horse battery"
    ) async throws -> Portal_Identity_V1_LoginResponse {
        try await client.login(
            .with {
                $0.email = email
                $0.password = password
            })
    }

    /// Finishes a sign-in that offered a choice, in `organizationID`.
    func choose(_ organizationID: String, with choiceToken: String) async throws -> Portal_Identity_V1_LoginResponse {
        try await client.login(
            .with {
                $0.choiceToken = choiceToken
                $0.organizationID = organizationID
            })
    }

    /// Makes ada@example.com (Admin of "Acme") a Viewer of a second organization, "Birch"; returns
    /// (Acme's id, Birch's id).
    func adaInTwoOrganizations(password: String = "correct horse battery") async throws -> (String, String) {
        let (acme, _) = try await organizationWithAdmin(name: "Acme", email: "ada@example.com")
        var create = Portal_Identity_V1_CreateOrganizationRequest()
        create.name = "Birch"
        create.firstAdminEmail = "bo@birch.example"
        create.idempotencyKey = UUID().uuidString
        let birch = try await client.createOrganization(create).organization!.organizationID
        let bo = try await accept(email: "bo@birch.example", firstName: "Bo", lastName: "Birch")
        _ = try await invite("Ada@Example.com", role: .viewer, organizationID: birch, as: bo)
        _ = try await accept(email: "ada@example.com", firstName: "Ada", lastName: "Lovelace", password: password)
        return (acme, birch)
    }

    /// How many choice rows the database holds.
    func storedChoices() async throws -> Int {
        try await component.database.read { database in
            try await database.raw("SELECT COUNT(*) AS n FROM login_choices").first()!.decode(column: "n", as: Int.self)
        }
    }
}

@Suite("Identity: signing in with email and password alone")
struct SignInByEmailTests {
    @Test(arguments: TestBackend.available) func aMemberOfOneOrganizationIsSignedInAtOnce(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationID, admin) = try await harness.organizationWithAdmin()
            let signIn = try await harness.login(email: "ADA@example.com")
            #expect(signIn.choiceToken.isEmpty && signIn.organizationChoices.isEmpty)
            #expect(signIn.principal?.memberID == admin.memberID)
            #expect(signIn.principal?.organizationID == organizationID)
            #expect(try await harness.authenticate(signIn.sessionToken).memberID == admin.memberID)
        }
    }

    @Test(arguments: TestBackend.available) func aMemberOfSeveralChoosesAnOrganizationAndIsSignedInThere(
        backend: TestBackend
    ) async throws {
        let clock = ManualClock(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        try await IdentityHarness.run(on: backend, clock: clock) { harness in
            let (acme, birch) = try await harness.adaInTwoOrganizations()
            let signIn = try await harness.login(email: "ada@example.com")
            #expect(signIn.sessionToken.isEmpty && signIn.principal == nil)
            #expect(!signIn.choiceToken.isEmpty)
            #expect(signIn.choiceExpiresAt?.milliseconds == clock.milliseconds() + 5 * 60 * 1000)
            #expect(signIn.organizationChoices.map(\.organizationID) == [acme, birch])
            #expect(signIn.organizationChoices.map(\.name) == ["Acme", "Birch"])

            let session = try await harness.choose(birch, with: signIn.choiceToken)
            #expect(session.principal?.organizationID == birch)
            #expect(session.principal?.role == .viewer)
            #expect(session.organizationChoices.isEmpty && session.choiceToken.isEmpty)
            let principal = try await harness.authenticate(session.sessionToken)
            #expect(principal.organizationID == birch && principal.email == "Ada@Example.com")
        }
    }

    @Test(arguments: TestBackend.available) func aChoiceTokenWorksOnceAndIsStoredOnlyHashed(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (acme, birch) = try await harness.adaInTwoOrganizations()
            let signIn = try await harness.login(email: "ada@example.com")
            let stored = try await harness.component.database.read { database in
                try await database.raw("SELECT token_hash FROM login_choices").all().map {
                    try $0.decode(column: "token_hash", as: Data.self)
                }
            }
            #expect(
                stored == [
                    Data(SecretHashing.sha256(signIn.choiceToken)), Data(SecretHashing.sha256(signIn.choiceToken)),
                ])

            _ = try await harness.choose(acme, with: signIn.choiceToken)
            #expect(try await harness.storedChoices() == 0)
            for organizationID in [acme, birch] {
                let reused = try await #require(throws: RPCError.self) {
                    try await harness.choose(organizationID, with: signIn.choiceToken)
                }
                #expect(reused.code == .unauthenticated)
                #expect(reused.message.hasPrefix("choice_token: not a valid choice"))
            }
        }
    }

    @Test(arguments: TestBackend.available) func anExpiredChoiceTokenIsRefusedAndExpiredChoicesAreDropped(
        backend: TestBackend
    ) async throws {
        let clock = ManualClock(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        try await IdentityHarness.run(on: backend, clock: clock) { harness in
            let (acme, _) = try await harness.adaInTwoOrganizations()
            let inTime = try await harness.login(email: "ada@example.com")
            clock.advance(by: .milliseconds(5 * 60 * 1000 - 1))
            #expect(try await harness.choose(acme, with: inTime.choiceToken).principal?.organizationID == acme)

            let late = try await harness.login(email: "ada@example.com")
            let forgotten = try await harness.login(email: "ada@example.com")
            #expect(try await harness.storedChoices() == 4)
            clock.advance(by: .milliseconds(5 * 60 * 1000))
            let expired = try await #require(throws: RPCError.self) {
                try await harness.choose(acme, with: late.choiceToken)
            }
            #expect(expired.code == .unauthenticated)
            #expect(expired.message == "choice_token: the choice expired; sign in again")
            #expect(try await harness.storedChoices() == 2)
            // A new choice drops every expired one on the way.
            _ = try await harness.login(email: "ada@example.com")
            #expect(try await harness.storedChoices() == 2)
            let dropped = try await #require(throws: RPCError.self) {
                try await harness.choose(acme, with: forgotten.choiceToken)
            }
            #expect(dropped.code == .unauthenticated)
        }
    }

    @Test(arguments: TestBackend.available) func aChoiceTokenOpensOnlyAnOrganizationItOffered(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (_, birch) = try await harness.adaInTwoOrganizations()
            let (elsewhere, _) = try await harness.organizationWithAdmin(name: "Cedar", email: "cy@cedar.example")
            let signIn = try await harness.login(email: "ada@example.com")
            for organizationID in [elsewhere, "org_unknown"] {
                let refused = try await #require(throws: RPCError.self) {
                    try await harness.choose(organizationID, with: signIn.choiceToken)
                }
                #expect(refused.code == .unauthenticated)
                #expect(
                    refused.message
                        == "choice_token: organization_id \"\(organizationID)\" is not one of this sign-in's organizations"
                )
            }
            let missing = try await #require(throws: RPCError.self) {
                try await harness.choose("", with: signIn.choiceToken)
            }
            #expect(missing.code == .invalidArgument && missing.message.hasPrefix("organization_id"))
            // A wrong choice does not use the token up.
            #expect(try await harness.choose(birch, with: signIn.choiceToken).principal?.organizationID == birch)
        }
    }

    @Test(arguments: TestBackend.available) func onlyOrganizationsWhereThePasswordIsValidAreOffered(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (acme, birch) = try await harness.adaInTwoOrganizations(password: "another horse battery")
            let intoAcme = try await harness.login(email: "ada@example.com")
            #expect(intoAcme.choiceToken.isEmpty && intoAcme.principal?.organizationID == acme)
            let intoBirch = try await harness.login(email: "ada@example.com", password: "another horse battery")
            #expect(intoBirch.choiceToken.isEmpty && intoBirch.principal?.organizationID == birch)
            // Naming an organization still signs in there, as before.
            #expect(
                try await harness.login(
                    organizationID: birch, email: "ada@example.com", password: "another horse battery"
                ).isEmpty == false)
        }
    }

    @Test(arguments: TestBackend.available) func anUnknownEmailAndAWrongPasswordGetTheSameAnswerForTheSameWork(
        backend: TestBackend
    ) async throws {
        let passwords = CountingPasswords()
        try await IdentityHarness.run(on: backend, passwords: passwords) { harness in
            let (organizationID, _) = try await harness.organizationWithAdmin()
            var answers: [String: (RPCStatusCode, String, Int)] = [:]
            let attempts: [(String, Portal_Identity_V1_LoginRequest)] = [
                (
                    "unknown email",
                    .with {
                        $0.email = "nobody@example.com"
                        $0.password = "correct horse battery"
                    }
                ),
                (
                    "wrong password",
                    .with {
                        $0.email = "ada@example.com"
                        $0.password = "wrong horse battery"
                    }
                ),
                (
                    "unknown email in the organization",
                    .with {
                        $0.organizationID = organizationID
                        $0.email = "nobody@example.com"
                        $0.password = "correct horse battery"
                    }
                ),
                (
                    "wrong password in the organization",
                    .with {
                        $0.organizationID = organizationID
                        $0.email = "ada@example.com"
                        $0.password = "wrong horse battery"
                    }
                ),
            ]
            for (name, request) in attempts {
                passwords.reset()
                let error = try await #require(throws: RPCError.self) { try await harness.client.login(request) }
                answers[name] = (error.code, error.message, passwords.verifications)
            }
            for (name, answer) in answers {
                #expect(answer.0 == .unauthenticated, "\(name)")
                #expect(answer.1 == "email or password is incorrect", "\(name)")
                #expect(answer.2 == 1, "\(name): \(answer.2) passwords checked")
            }
            passwords.reset()
            _ = try await harness.login(email: "ada@example.com")
            #expect(passwords.verifications == 1)
        }
    }

    @Test(arguments: TestBackend.available) func everyMembershipOfTheEmailIsChecked(backend: TestBackend) async throws {
        let passwords = CountingPasswords()
        try await IdentityHarness.run(on: backend, passwords: passwords) { harness in
            _ = try await harness.adaInTwoOrganizations()
            passwords.reset()
            _ = try await harness.login(email: "ada@example.com")
            #expect(passwords.verifications == 2)
            passwords.reset()
            _ = try await #require(throws: RPCError.self) {
                try await harness.login(email: "ada@example.com", password: "wrong horse battery")
            }
            #expect(passwords.verifications == 2)
        }
    }

    @Test(arguments: TestBackend.available) func signInsWithoutAnOrganizationAreRateLimited(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            _ = try await harness.organizationWithAdmin()
            for _ in 0..<10 {
                let wrong = try await #require(throws: RPCError.self) {
                    try await harness.login(email: "ada@example.com", password: "wrong horse battery")
                }
                #expect(wrong.code == .unauthenticated)
            }
            let limited = try await #require(throws: RPCError.self) {
                try await harness.login(email: "ada@example.com")
            }
            #expect(limited.code == .resourceExhausted)
        }
    }
}

@Suite("Identity: a member's organizations")
struct MembershipsTests {
    @Test(arguments: TestBackend.available) func aMemberSeesEveryOrganizationOfTheirEmailWithTheirRoleThere(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (acme, birch) = try await harness.adaInTwoOrganizations()
            let session = try await harness.choose(
                birch, with: try await harness.login(email: "ada@example.com").choiceToken)
            let ada = try #require(session.principal)
            let memberships = try await harness.client.listMemberships(
                .with {
                    $0.organizationID = birch
                    $0.memberID = ada.memberID
                }, metadata: PrincipalMetadata.metadata(memberID: ada.memberID, displayName: ada.displayName)
            ).memberships
            #expect(memberships.map(\.organizationID) == [acme, birch])
            #expect(memberships.map(\.organizationName) == ["Acme", "Birch"])
            #expect(memberships.map(\.role) == [.admin, .viewer])
            #expect(memberships.map(\.current) == [false, true])
        }
    }

    @Test(arguments: TestBackend.available) func aMemberMayListOnlyTheirOwnOrganizations(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (acme, birch) = try await harness.adaInTwoOrganizations()
            let ada = try await harness.authenticate(
                try await harness.login(organizationID: acme, email: "ada@example.com"))
            let bo = try await harness.authenticate(
                try await harness.login(organizationID: birch, email: "bo@birch.example"))
            let asBo = PrincipalMetadata.metadata(memberID: bo.memberID, displayName: bo.displayName)
            let someoneElse = try await #require(throws: RPCError.self) {
                try await harness.client.listMemberships(
                    .with {
                        $0.organizationID = acme
                        $0.memberID = ada.memberID
                    }, metadata: asBo)
            }
            #expect(someoneElse.code == .permissionDenied)
            let wrongOrganization = try await #require(throws: RPCError.self) {
                try await harness.client.listMemberships(
                    .with {
                        $0.organizationID = birch
                        $0.memberID = ada.memberID
                    })
            }
            #expect(wrongOrganization.code == .notFound)
            let own = try await harness.client.listMemberships(
                .with {
                    $0.organizationID = birch
                    $0.memberID = bo.memberID
                }, metadata: asBo)
            #expect(own.memberships.map(\.organizationID) == [birch])
        }
    }
}

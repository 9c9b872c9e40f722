import Foundation
import PortalAPI
import PortalRPC
import PortalTestSupport
import Testing

@Suite("Identity service rules, through a real server and database")
struct IdentityServiceTests {
    @Test(arguments: TestBackend.available) func theFirstAdminJoinsThroughTheirInviteAndSignsIn(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationID, admin) = try await harness.organizationWithAdmin()
            #expect(admin.role == .admin)
            #expect(admin.displayName == "Ada Lovelace")
            let token = try await harness.login(organizationID: organizationID, email: "ADA@example.com")
            let principal = try await harness.authenticate(token)
            #expect(principal.memberID == admin.memberID)
            #expect(principal.organizationID == organizationID)
            let invites = try await harness.client.listInvites(.with { $0.organizationID = organizationID })
            #expect(invites.totalSize == 0)
        }
    }

    @Test(arguments: TestBackend.available) func aDeletedMembersSessionStopsWorkingAtOnce(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationID, admin) = try await harness.organizationWithAdmin()
            _ = try await harness.invite("bob@example.com", role: .viewer, organizationID: organizationID, as: admin)
            let bob = try await harness.accept(email: "bob@example.com", firstName: "Bob", lastName: "Stone")
            let token = try await harness.login(organizationID: organizationID, email: "bob@example.com")
            #expect(try await harness.authenticate(token).role == .viewer)

            _ = try await harness.client.updateMember(
                .with {
                    $0.organizationID = organizationID
                    $0.memberID = bob.memberID
                    $0.role = .admin
                })
            #expect(try await harness.authenticate(token).role == .admin)

            _ = try await harness.client.deleteMember(
                .with {
                    $0.organizationID = organizationID
                    $0.memberID = bob.memberID
                })
            let error = try await #require(throws: RPCError.self) { try await harness.authenticate(token) }
            #expect(error.code == .unauthenticated)
        }
    }

    @Test(arguments: TestBackend.available) func theLastAdminCanBeNeitherDemotedNorDeleted(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationID, admin) = try await harness.organizationWithAdmin()
            let demote = try await #require(throws: RPCError.self) {
                try await harness.client.updateMember(
                    .with {
                        $0.organizationID = organizationID
                        $0.memberID = admin.memberID
                        $0.role = .viewer
                    })
            }
            #expect(demote.code == .failedPrecondition)
            let delete = try await #require(throws: RPCError.self) {
                try await harness.client.deleteMember(
                    .with {
                        $0.organizationID = organizationID
                        $0.memberID = admin.memberID
                    })
            }
            #expect(delete.code == .failedPrecondition)
            #expect(try await harness.client.countMembers(.with { $0.organizationID = organizationID }).adminCount == 1)
        }
    }

    @Test(arguments: TestBackend.available) func fiftyConcurrentInvitesOfOneEmailCreateExactlyOne(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationID, admin) = try await harness.organizationWithAdmin()
            let outcomes = try await withThrowingTaskGroup(of: RPCStatusCode.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        do {
                            _ = try await harness.invite(
                                index % 2 == 0 ? "sam@example.com" : "SAM@example.com", role: .viewer,
                                organizationID: organizationID, as: admin)
                            return .ok
                        } catch let error as RPCError {
                            return error.code
                        }
                    }
                }
                return try await group.reduce(into: [RPCStatusCode]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .ok }.count == 1)
            #expect(outcomes.filter { $0 == .alreadyExists }.count == 49)
            #expect(try await harness.client.listInvites(.with { $0.organizationID = organizationID }).totalSize == 1)
        }
    }

    @Test(arguments: TestBackend.available) func aResentInviteKillsTheOldSecret(backend: TestBackend) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationID, admin) = try await harness.organizationWithAdmin()
            let invite = try await harness.invite(
                "cy@example.com", role: .viewer, organizationID: organizationID, as: admin)
            let oldSecret = try await harness.latestSecret(for: "cy@example.com")
            _ = try await harness.client.resendInvite(
                .with {
                    $0.organizationID = organizationID
                    $0.inviteID = invite.inviteID
                })
            let error = try await #require(throws: RPCError.self) {
                try await harness.client.acceptInvite(
                    .with {
                        $0.inviteSecret = oldSecret
                        $0.firstName = "Cy"
                        $0.lastName = "Young"
                        $0.password = "correct horse battery"
                    })
            }
            #expect(error.code == .unauthenticated)
            #expect(
                try await harness.accept(email: "cy@example.com", firstName: "Cy", lastName: "Young").email
                    == "cy@example.com")
        }
    }

    @Test(arguments: TestBackend.available) func anotherOrganizationsIdsAreNotFound(backend: TestBackend) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationA, adminA) = try await harness.organizationWithAdmin(name: "A", email: "a@example.com")
            let (organizationB, _) = try await harness.organizationWithAdmin(name: "B", email: "b@example.com")
            let invite = try await harness.invite(
                "x@example.com", role: .viewer, organizationID: organizationA, as: adminA)
            let read = try await #require(throws: RPCError.self) {
                try await harness.client.getMember(
                    .with {
                        $0.organizationID = organizationB
                        $0.memberID = adminA.memberID
                    })
            }
            #expect(read.code == .notFound)
            let revoke = try await #require(throws: RPCError.self) {
                try await harness.client.revokeInvite(
                    .with {
                        $0.organizationID = organizationB
                        $0.inviteID = invite.inviteID
                    })
            }
            #expect(revoke.code == .notFound)
        }
    }

    @Test(arguments: TestBackend.available) func everyChangeQueuesAMembersAuditEventNamingWhoDidIt(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationID, admin) = try await harness.organizationWithAdmin()
            let invite = try await harness.invite(
                "dee@example.com", role: .viewer, organizationID: organizationID, as: admin)
            _ = try await harness.client.revokeInvite(
                .with {
                    $0.organizationID = organizationID
                    $0.inviteID = invite.inviteID
                }, metadata: PrincipalMetadata.metadata(memberID: admin.memberID, displayName: admin.displayName))
            let events = try await harness.auditEvents()
            #expect(events.map(\.action) == [.memberInvited, .inviteAccepted, .memberInvited, .inviteRevoked])
            #expect(events.allSatisfy { $0.eventType == .members && $0.organizationID == organizationID })
            #expect(events.map(\.user) == ["system", "Ada Lovelace", "Ada Lovelace", "Ada Lovelace"])
            #expect(events[2].message == "Invited dee@example.com as Viewer")
        }
    }

    @Test(arguments: TestBackend.available) func listsRefuseBadArgumentsNamingTheField(
        backend: TestBackend
    ) async throws {
        try await IdentityHarness.run(on: backend) { harness in
            let (organizationID, _) = try await harness.organizationWithAdmin()
            let cases: [(Portal_Identity_V1_ListMembersRequest, String)] = [
                (
                    .with {
                        $0.organizationID = organizationID
                        $0.pageSize = 501
                    }, "page_size"
                ),
                (
                    .with {
                        $0.organizationID = organizationID
                        $0.orderBy = "password desc"
                    }, "order_by"
                ),
                (
                    .with {
                        $0.organizationID = organizationID
                        $0.pageToken = "garbage!"
                    }, "page_token"
                ),
                (.with { $0.organizationID = "" }, "organization_id"),
            ]
            for (request, field) in cases {
                let error = try await #require(throws: RPCError.self) { try await harness.client.listMembers(request) }
                #expect(error.code == .invalidArgument)
                #expect(error.message.hasPrefix(field))
            }
        }
    }
}

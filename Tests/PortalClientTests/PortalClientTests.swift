import PortalClient
import PortalTestSupport
import Testing

@Suite("The client library against the portal")
struct PortalClientTests {
    static let password = "correct horse battery"

    @Test func signingInKeepsTheSessionForEveryCallAndLoggingOutForgetsIt() async throws {
        try await PortalStack.run { portal in
            let organizationID = try await portal.organization(
                "Acme Audio", admin: "ada@example.com", password: Self.password)
            let client = PortalClient(host: "127.0.0.1", port: portal.gatewayPort)
            let refused = await #expect(throws: RPCError.self) { try await client.portal.whoAmI(.init()) }
            #expect(refused?.code == .unauthenticated)

            await #expect(throws: RPCError.self) {
                try await client.login(email: "ada@example.com", password: "wrong horse battery")
            }
            #expect(client.sessionToken == nil, "a refused sign-in keeps no token")

            let signIn = try await client.login(email: "ada@example.com", password: Self.password)
            #expect(client.sessionToken == signIn.sessionToken && !signIn.sessionToken.isEmpty)
            #expect(try await client.portal.whoAmI(.init()).principal?.organizationID == organizationID)

            // A program that saved the token carries on with it.
            let resumed = PortalClient(host: "127.0.0.1", port: portal.gatewayPort, sessionToken: signIn.sessionToken)
            #expect(try await resumed.portal.whoAmI(.init()).principal?.email == "ada@example.com")

            try await client.logout()
            #expect(client.sessionToken == nil)
            let ended = await #expect(throws: RPCError.self) { try await resumed.portal.whoAmI(.init()) }
            #expect(ended?.code == .unauthenticated, "the session ended at the gateway, not only in the client")
            await client.close()
            await resumed.close()
        }
    }

    @Test func aMemberOfTwoOrganizationsChoosesOneAndIsSignedInThere() async throws {
        try await PortalStack.run { portal in
            try await portal.organization("Acme Audio", admin: "grace@example.com", password: Self.password)
            let second = try await portal.organization(
                "Brightline Video", admin: "grace@example.com", password: Self.password)
            let client = PortalClient(host: "127.0.0.1", port: portal.gatewayPort)
            let signIn = try await client.login(email: "grace@example.com", password: Self.password)
            #expect(signIn.sessionToken.isEmpty && client.sessionToken == nil, "no session before the choice")
            #expect(Set(signIn.organizationChoices.map(\.name)) == ["Acme Audio", "Brightline Video"])

            try await client.login(choiceToken: signIn.choiceToken, organizationID: second)
            #expect(client.sessionToken != nil)
            #expect(try await client.portal.whoAmI(.init()).principal?.organizationID == second)
            await client.close()
        }
    }
}

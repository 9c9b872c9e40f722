import Logging
import PortalRPC
import Testing

@testable import PortalIdentity

@Suite struct InviteLinkTemplateTests {
    @Test func theSecretReplacesThePlaceholderInTheMailsLink() throws {
        let link = try InviteLinkTemplate("http://127.0.0.1:8080/accept-invite?code={secret}")
        #expect(link.link(secret: "s3cr3t-_x") == "http://127.0.0.1:8080/accept-invite?code=s3cr3t-_x")
        let mail = InviteMail(
            to: "grace@northwind.example", organizationID: "org_1", organizationName: "Northwind Robotics",
            role: "Viewer",
            invitedBy: "Ada Lovelace", secret: "s3cr3t", expiresAt: 0)
        let text = mail.rfc5322(from: "portal@example.com", messageID: "m1", acceptLink: link)
        #expect(text.contains("Accept the invite: http://127.0.0.1:8080/accept-invite?code=s3cr3t\r\n"))
        #expect(text.contains("Invite code: s3cr3t\r\n"))
    }

    @Test func httpsLinksWithThePlaceholderAnywhereAreAccepted() throws {
        for template in [
            "https://portal.example.com/accept-invite?code={secret}", "https://localhost:8080/invites/{secret}",
            "HTTP://[::1]:8080/accept-invite?code={secret}&source=mail",
        ] {
            #expect(try InviteLinkTemplate(template).template == template)
        }
    }

    @Test(arguments: [
        "https://portal.example.com/accept-invite",  // no placeholder
        "https://portal.example.com/accept-invite?code={SECRET}",
        "ftp://portal.example.com/{secret}",
        "javascript:alert(1)//{secret}",
        "/accept-invite?code={secret}",  // not absolute
        "https:///accept-invite?code={secret}",  // no host
        "https://portal.example.com/accept invite?code={secret}",
        "https://portal.example.com/accept-invite?code={secret}\nBcc: someone@example.com",
        "",
    ])
    func anythingButAnHTTPLinkWithThePlaceholderIsRefused(template: String) {
        #expect(throws: RPCError.self) { try InviteLinkTemplate(template) }
    }

    @Test func theIdentityServiceRefusesToStartWithABadLink() async throws {
        var settings = IdentityComponent.Settings(dataDirectory: "/nonexistent-portal-data")
        settings.acceptURL = "mailto:someone@example.com?body={secret}"
        await #expect(throws: RPCError.self) {
            _ = try await IdentityComponent.start(settings: settings, logger: .init(label: "test"))
        }
    }
}

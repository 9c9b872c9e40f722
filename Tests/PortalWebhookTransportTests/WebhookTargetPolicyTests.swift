import Testing

@testable import PortalWebhookTransport

@Suite("Webhook endpoints: URLs and the addresses they may reach")
struct WebhookTargetPolicyTests {
    @Test func urlsAreParsedIntoSchemeHostPortAndTarget() throws {
        let url = try WebhookURL("https://Hooks.Example.com:8443/portal/events?source=ecp#ignored")
        #expect(url.scheme == "https" && url.host == "hooks.example.com" && url.port == 8443)
        #expect(url.target == "/portal/events?source=ecp" && url.hostHeader == "hooks.example.com:8443")
        let plain = try WebhookURL("http://127.0.0.1")
        #expect(plain.port == 80 && plain.target == "/" && plain.hostHeader == "127.0.0.1")
        let v6 = try WebhookURL("https://[::1]:9000/x")
        #expect(v6.host == "::1" && v6.port == 9000 && v6.hostHeader == "[::1]:9000")
    }

    @Test func malformedURLsAreRefusedSayingWhy() {
        let cases: [(String, String)] = [
            ("ftp://example.com/", "https://"), ("example.com/hook", "https://"), ("https://", "no host"),
            ("https://user:secret@example.com/", "user name"), ("https://example.com:0/", "port"),
            ("https://example.com:70000/", "port"), ("https://exa mple.com/", "spaces"),
            ("https://[::1/", "unclosed"), ("https://example.com/" + String(repeating: "a", count: 2048), "2,048"),
        ]
        for (text, words) in cases {
            let error = #expect(throws: WebhookURL.Invalid.self) { try WebhookURL(text) }
            #expect(error?.description.contains(words) == true, "\(text): \(error?.description ?? "accepted")")
        }
    }

    @Test func addressesAreClassifiedByNetwork() {
        func v4(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32) -> AddressRange {
            AddressRange.classify(v4: a << 24 | b << 16 | c << 8 | d)
        }
        #expect(v4(127, 0, 0, 1) == .loopback)
        for private_ in [
            v4(10, 1, 2, 3), v4(172, 16, 0, 1), v4(172, 31, 255, 255), v4(192, 168, 1, 1),
            v4(169, 254, 169, 254), v4(100, 64, 0, 1),
        ] {
            #expect(private_ == .privateNetwork)
        }
        #expect(v4(172, 32, 0, 1) == .public && v4(8, 8, 8, 8) == .public && v4(203, 0, 113, 10) == .public)
        #expect(v4(0, 0, 0, 0) == .forbidden && v4(224, 0, 0, 1) == .forbidden && v4(255, 255, 255, 255) == .forbidden)
        #expect(AddressRange.classify(v6: [UInt8](repeating: 0, count: 15) + [1]) == .loopback)
        #expect(AddressRange.classify(v6: [0xfe, 0x80] + [UInt8](repeating: 0, count: 14)) == .privateNetwork)
        #expect(AddressRange.classify(v6: [0xfd, 0x12] + [UInt8](repeating: 0, count: 14)) == .privateNetwork)
        #expect(
            AddressRange.classify(v6: [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1]) == .privateNetwork)
        #expect(AddressRange.classify(v6: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12)) == .public)
        #expect(AddressRange.classify(v6: [UInt8](repeating: 0, count: 16)) == .forbidden)
    }

    @Test func privateNetworksAndPlainHTTPNeedTheOperatorsConsent() async throws {
        let strict = WebhookTargetPolicy()
        for text in [
            "https://127.0.0.1/x", "https://10.0.0.8/x", "https://169.254.169.254/latest", "https://[::1]/x",
            "https://localhost/x",
        ] {
            await #expect(throws: WebhookTargetPolicy.Refusal.self, "\(text)") { _ = try await strict.check(text) }
        }
        _ = try await strict.check("https://203.0.113.10/hooks")
        await #expect(throws: WebhookTargetPolicy.Refusal.self) { _ = try await strict.check("http://203.0.113.10/") }
        await #expect(throws: WebhookTargetPolicy.Refusal.self) { _ = try await strict.check("https://0.0.0.0/") }

        let development = WebhookTargetPolicy(allowPrivateNetworks: true)
        _ = try await development.check("http://127.0.0.1:8080/x")
        _ = try await development.check("https://10.0.0.8/x")
        await #expect(throws: WebhookTargetPolicy.Refusal.self) { _ = try await development.check("http://10.0.0.8/x") }
    }
}

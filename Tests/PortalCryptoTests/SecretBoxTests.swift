import PortalCrypto
import Testing

@Suite("Sealed secrets (AES-256-GCM)")
struct SecretBoxTests {
    @Test func aSealedSecretOpensWithItsKeyOnlyAndNotOnceAltered() throws {
        let box = try #require(SecretBox(key: SecretHashing.randomBytes(32)))
        let secret = Array("whsec_abc".utf8)
        let sealed = box.seal(secret)
        #expect(sealed.count == 12 + secret.count + 16)
        #expect(box.seal(secret) != sealed, "a fresh nonce per seal")
        #expect(box.open(sealed) == secret)
        var altered = sealed
        altered[14] ^= 1
        #expect(box.open(altered) == nil)
        #expect(try #require(SecretBox(key: SecretHashing.randomBytes(32))).open(sealed) == nil)
        #expect(box.open(Array(sealed.prefix(20))) == nil)
        #expect(SecretBox(key: [1, 2, 3]) == nil)
    }
}

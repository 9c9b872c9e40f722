import PortalCrypto
import Testing

@Suite("Secrets and passwords")
struct SecretHashingTests {
    static let fast = SecretHashing.ScryptParameters(n: 1 << 10, r: 8, p: 1)

    @Test func aPasswordVerifiesAgainstItsOwnHashOnly() {
        let hash = SecretHashing.hashPassword("correct horse battery", parameters: Self.fast)
        #expect(hash.hasPrefix("scrypt$1024$8$1$"))
        #expect(SecretHashing.verifyPassword("correct horse battery", against: hash))
        #expect(!SecretHashing.verifyPassword("correct horse batterz", against: hash))
        #expect(!SecretHashing.verifyPassword("", against: hash))
    }

    @Test func theSamePasswordHashesDifferentlyEachTime() {
        #expect(
            SecretHashing.hashPassword("same password!", parameters: Self.fast)
                != SecretHashing.hashPassword("same password!", parameters: Self.fast))
    }

    @Test func malformedStoredHashesNeverVerify() {
        for stored in ["", "scrypt$", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA"] {
            #expect(!SecretHashing.verifyPassword("anything at all", against: stored))
        }
    }

    @Test func tokensAreRandomURLSafeAndLong() {
        let tokens = (0..<100).map { _ in SecretHashing.newToken() }
        #expect(Set(tokens).count == 100)
        #expect(tokens.allSatisfy { $0.count == 43 && !$0.contains("+") && !$0.contains("/") && !$0.contains("=") })
    }

    @Test func sha256MatchesTheStandardVector() {
        let hex: String = SecretHashing.sha256("abc").map { (byte: UInt8) -> String in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
        #expect(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func constantTimeComparisonComparesContent() {
        #expect(SecretHashing.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!SecretHashing.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!SecretHashing.constantTimeEqual([1, 2, 3], [1, 2]))
    }
}

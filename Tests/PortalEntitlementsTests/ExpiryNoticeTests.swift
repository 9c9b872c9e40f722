import Testing

@testable import PortalEntitlements

@Suite("Expiry notices: which one is due")
struct ExpiryNoticeTests {
    static let day = ExpiryNotice.day
    static let thresholds = [30, 7, 1]

    @Test func theSmallestThresholdReachedIsDue() {
        let now: Int64 = 1_800_000_000_000
        func due(inDays days: Double) -> Int? {
            ExpiryNotice.threshold(
                expiration: now + Int64(days * Double(Self.day)), now: now, thresholds: Self.thresholds)
        }
        #expect(due(inDays: 31) == nil)
        #expect(due(inDays: 30) == 30 && due(inDays: 29.5) == 30 && due(inDays: 8) == 30)
        #expect(due(inDays: 7) == 7 && due(inDays: 2) == 7)
        #expect(due(inDays: 1) == 1 && due(inDays: 0.1) == 1)
        #expect(due(inDays: 0) == 0 && due(inDays: -0.5) == 0, "expired within the last day")
        #expect(due(inDays: -2) == nil, "no late notice of an old expiry")
        #expect(ExpiryNotice.threshold(expiration: now + 3 * Self.day, now: now, thresholds: []) == nil)
    }
}

import PortalAPI
import PortalRPC
import Testing

@Suite("Gateway: methods marked without side effects")
struct ReadOnlyMethodsTests {
    @Test func exactlyTheMethodsThatOnlyReadAreMarked() {
        let marked = Set(Portal_Gateway_V1_PortalMethods.all.filter(\.hasNoSideEffects).map(\.method))
        #expect(
            marked == [
                "WhoAmI", "GetDashboard", "ListProducts", "GetProduct", "ListEntitlements", "GetEntitlement",
                "ListActivations", "ExportActivationsCsv", "ListAuditEvents", "ExportAuditEventsCsv",
                "WatchAuditEvents", "ListWebhooks", "ListWebhookDeliveries", "ListMembers", "ListInvites",
            ])
    }

    @Test func aDescriptorIsNotMarkedUnlessItSaysSo() {
        #expect(!MethodDescriptor(service: "portal.testing.v1.Echo", method: "Get", kind: .unary).hasNoSideEffects)
        #expect(!Portal_Gateway_V1_PortalMethods.login.hasNoSideEffects)
        #expect(!Portal_Identity_V1_IdentityMethods.login.hasNoSideEffects)
    }
}

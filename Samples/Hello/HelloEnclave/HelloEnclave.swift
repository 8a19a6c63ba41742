import EnclaveRuntime
import HelloInterface

/// The hello enclave: one ECALL that makes one OCALL.
@main
struct HelloEnclave: EnclaveApplication {
    let context: EnclaveContext

    init(context: EnclaveContext) {
        self.context = context
    }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        calls.register(Greet.self) { name in
            let trimmed = String(name.prefix(256))
            _ = try await context.ocall(Log.self, "greeting \(trimmed.count) characters")
            let id = String(context.identity.uniqueID.hex.prefix(8))
            return "Hello, \(trimmed)! (from enclave \(id))"
        }
        calls.register(Attest.self) { nonce in
            guard nonce.count <= 1024 else { throw EnclaveError.malformedInput("nonce longer than 1 KiB") }
            return try await context.evidence(reportData: EnclaveContext.reportData(hashing: nonce))
        }
    }
}

import EnclaveRuntime
import VaultInterface

/// Seals secrets for the host to store, and unseals them again — only in an enclave the policy admits.
@main
struct VaultEnclave: EnclaveApplication {
    let context: EnclaveContext

    init(context: EnclaveContext) {
        self.context = context
    }

    func register(_ calls: inout ECallTable) {
        let context = self.context
        calls.register(VaultSeal.self) { request in
            try await context.seal(request.secret, policy: request.policy, additionalData: Array(request.name.utf8))
        }
        calls.register(VaultUnseal.self) { request in
            let opened = try await context.unseal(request.blob)
            guard opened.additionalData == Array(request.name.utf8) else {
                throw EnclaveError.invalidSignature("this blob was sealed under another name")
            }
            return opened.plaintext
        }
    }
}

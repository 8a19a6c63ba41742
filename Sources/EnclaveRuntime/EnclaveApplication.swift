/// The entry point of an enclave executable.
///
/// Mark a conforming type `@main`. The runtime's `main()` locks the process down (not dumpable, no new
/// privileges, seccomp allowlist) *before* it constructs the application, then serves the ECALLs it registers.
///
/// ```swift
/// @main
/// struct HelloEnclave: EnclaveApplication {
///     let context: EnclaveContext
///     init(context: EnclaveContext) { self.context = context }
///     func register(_ calls: inout ECallTable) {
///         calls.register(Greet.self) { name in "Hello, \(name)" }
///     }
/// }
/// ```
public protocol EnclaveApplication: Sendable {
    /// Create the application once the sandbox is in place.
    ///
    /// If it throws, the enclave writes the error to its standard error (which the host reads: keep secrets out of it)
    /// and exits with status 4 before serving any call; the host's load fails.
    init(context: EnclaveContext) async throws
    /// Register the ECALLs this enclave serves.
    func register(_ calls: inout ECallTable)
}

extension EnclaveApplication {
    /// Run the enclave: sandbox, handshake with the loader, serve ECALLs until the host goes away.
    ///
    /// On the main actor, where the program's entry point starts: so it runs on the main thread, as
    /// ``EnclaveRuntime/run(_:)`` must. A nonisolated `async` function would be entered by a hop to the global
    /// executor, which before the runtime installs its own is Dispatch's pool: that started Dispatch's worker threads
    /// in every enclave on this entry point, and ran the enclave's main-actor queue on one of them.
    @MainActor public static func main() async {
        await EnclaveRuntime.run(Self.self)
    }
}

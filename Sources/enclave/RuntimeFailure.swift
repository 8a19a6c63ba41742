/// A failure of the environment rather than of the command line or the evidence (a port in use, an unreachable
/// service): one line, exit status 70 (``ExitStatus/runtime``).
struct RuntimeFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

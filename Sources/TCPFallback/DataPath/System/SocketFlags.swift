import CDataPath

/// The socket types and flags the proxy passes to socket(2), from `cdatapath.h` (see there
/// why not Glibc's SOCK_* names).
public enum SocketFlags {
    public static let stream = tf_sock_stream
    public static let datagram = tf_sock_dgram
    public static let nonBlocking = tf_sock_nonblock
    public static let closeOnExec = tf_sock_cloexec
}

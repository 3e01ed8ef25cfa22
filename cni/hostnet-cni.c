/* hostnet-cni: the CNI plugin as a pure forwarder, in C for a small exec cost.
 *
 * It sends the runtime's command, environment and config (stdin) to hostnetd
 * over its unix socket, unread; hostnetd validates, acts and answers with the
 * CNI result or error and the exit code (header X-Cni-Exit). The Python
 * forwarder src/hostnet/cni/plugin.py does the same where no compiler exists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/hostnet/hostnet.sock"

static void fail(int code, const char *msg, const char *details) {
    printf("{\"cniVersion\": \"1.1.0\", \"code\": %d, \"msg\": \"%s\", \"details\": \"%s\"}\n",
           code, msg, details);
    exit(1);
}

static char *read_all(int fd, size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        n += (size_t)got;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* "socket" from the config without a JSON parser; else $HOSTNET_SOCKET; else the default. */
static void socket_path(const char *config, char *out, size_t size) {
    const char *at = strstr(config, "\"socket\"");
    if (at) {
        at += 8;
        while (*at == ' ' || *at == ':' || *at == '\t' || *at == '\n') at++;
        if (*at == '"') {
            const char *end = strchr(++at, '"');
            if (end && (size_t)(end - at) < size) {
                memcpy(out, at, (size_t)(end - at));
                out[end - at] = 0;
                return;
            }
        }
    }
    const char *env = getenv("HOSTNET_SOCKET");
    snprintf(out, size, "%s", env && *env ? env : DEFAULT_SOCKET);
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && !strpbrk(v, "\r\n") ? v : "";
}

int main(void) {
    size_t clen, rlen;
    char *config = read_all(0, &clen);
    if (strcmp(env("CNI_COMMAND"), "VERSION") == 0) { /* answered here: no daemon needed */
        puts("{\"cniVersion\": \"1.1.0\", \"supportedVersions\": [\"0.2.0\", \"0.3.0\", \"0.3.1\", "
             "\"0.4.0\", \"1.0.0\", \"1.1.0\"]}");
        return 0;
    }
    char path[108];
    socket_path(config, path, sizeof path);

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int status = strcmp(env("CNI_COMMAND"), "STATUS") == 0 ? 50 : 11;
        fail(status, "cannot reach hostnetd", path);
    }
    char head[8192];
    int hlen = snprintf(head, sizeof head,
                        "POST /cni HTTP/1.1\r\nHost: hostnet\r\nConnection: close\r\n"
                        "X-Cni-Command: %s\r\nX-Cni-Containerid: %s\r\nX-Cni-Netns: %s\r\n"
                        "X-Cni-Ifname: %s\r\nX-Cni-Args: %s\r\nContent-Length: %zu\r\n\r\n",
                        env("CNI_COMMAND"), env("CNI_CONTAINERID"), env("CNI_NETNS"),
                        env("CNI_IFNAME"), env("CNI_ARGS"), clen);
    if (hlen <= 0 || (size_t)hlen >= sizeof head) fail(4, "CNI environment too long", "");
    if (write(fd, head, (size_t)hlen) != hlen || write(fd, config, clen) != (ssize_t)clen)
        fail(11, "cannot send to hostnetd", path);
    char *resp = read_all(fd, &rlen);
    char *body = strstr(resp, "\r\n\r\n");
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !body) fail(100, "hostnetd refused the call", path);
    *body = 0;
    body += 4;
    int code = 1;
    for (char *line = resp; line && *line; line = strstr(line, "\r\n")) {
        if (*line == '\r') line += 2;
        if (strncasecmp(line, "x-cni-exit:", 11) == 0) code = atoi(line + 11);
    }
    fwrite(body, 1, strlen(body), stdout);
    return code;
}

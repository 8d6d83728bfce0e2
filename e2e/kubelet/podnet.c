/*
 * podnet: an LD_PRELOAD shim that gives a pod's process its own loopback address and cluster DNS.
 *
 * The test kubelet runs every pod as a local process; there are no network namespaces. This shim makes
 * such a process behave as if it had one, for the three libc calls that matter:
 *   bind()        0.0.0.0 and 127.0.0.1 become $FAKEKUBE_POD_IP, so pods never collide on a port and
 *                 nothing listens beyond loopback;
 *   connect()     127.0.0.1 becomes $FAKEKUBE_POD_IP, so "localhost" still means "this pod";
 *   getaddrinfo() wildcard (passive) lookups are IPv4 only (so the bind rewrite applies), "localhost"
 *                 is the pod IP, and names found in $FAKEKUBE_HOSTS_FILE (an /etc/hosts-style map the
 *                 kubelet keeps current) resolve there, trying the pod's search domains
 *                 <ns>.svc.cluster.local, svc.cluster.local and cluster.local as resolv.conf would.
 * It works below Python's socket module and below libuv (uvloop), which calls the same libc symbols.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static int pod_address(struct in_addr *out) {
    const char *ip = getenv("FAKEKUBE_POD_IP");
    return ip != NULL && inet_pton(AF_INET, ip, out) == 1;
}

/* Copy addr into *copy with the address replaced by the pod IP when it is one of the given ones. */
static const struct sockaddr *redirect(const struct sockaddr *addr, socklen_t len, struct sockaddr_in *copy,
                                       int any_too) {
    struct in_addr pod;
    if (addr == NULL || addr->sa_family != AF_INET || len < (socklen_t)sizeof(struct sockaddr_in)) return addr;
    if (!pod_address(&pod)) return addr;
    memcpy(copy, addr, sizeof(*copy));
    uint32_t a = ntohl(copy->sin_addr.s_addr);
    if (a == INADDR_LOOPBACK || (any_too && a == INADDR_ANY)) {
        copy->sin_addr = pod;
        return (const struct sockaddr *)copy;
    }
    return addr;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real = NULL;
    if (real == NULL) real = (bind_fn)dlsym(RTLD_NEXT, "bind");
    struct sockaddr_in copy;
    const struct sockaddr *use = redirect(addr, len, &copy, 1);
    return real(fd, use, use == addr ? len : (socklen_t)sizeof(copy));
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real = NULL;
    if (real == NULL) real = (bind_fn)dlsym(RTLD_NEXT, "connect");
    struct sockaddr_in copy;
    const struct sockaddr *use = redirect(addr, len, &copy, 0);
    return real(fd, use, use == addr ? len : (socklen_t)sizeof(copy));
}

/* Look name up in the hosts file; on success the IP text is in ip. */
static int hosts_lookup(const char *name, char *ip, size_t iplen) {
    const char *path = getenv("FAKEKUBE_HOSTS_FILE");
    if (path == NULL) return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        char *save = NULL;
        char *addr = strtok_r(line, " \t\r\n", &save);
        if (addr == NULL || addr[0] == '#') continue;
        for (char *tok = strtok_r(NULL, " \t\r\n", &save); tok != NULL; tok = strtok_r(NULL, " \t\r\n", &save)) {
            if (strcasecmp(tok, name) == 0) {
                snprintf(ip, iplen, "%s", addr);
                found = 1;
                break;
            }
        }
    }
    fclose(f);
    return found;
}

static int cluster_lookup(const char *node, char *ip, size_t iplen) {
    char name[512];
    snprintf(name, sizeof(name), "%s", node);
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.') name[n - 1] = '\0';
    if (hosts_lookup(name, ip, iplen)) return 1;
    const char *ns = getenv("FAKEKUBE_POD_NAMESPACE");
    const char *suffixes[3] = {NULL, "svc.cluster.local", "cluster.local"};
    char first[256];
    if (ns != NULL) {
        snprintf(first, sizeof(first), "%s.svc.cluster.local", ns);
        suffixes[0] = first;
    }
    for (int i = 0; i < 3; i++) {
        if (suffixes[i] == NULL) continue;
        char candidate[800];
        snprintf(candidate, sizeof(candidate), "%s.%s", name, suffixes[i]);
        if (hosts_lookup(candidate, ip, iplen)) return 1;
    }
    return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    static gai_fn real = NULL;
    if (real == NULL) real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    const char *pod_ip = getenv("FAKEKUBE_POD_IP");
    if (pod_ip != NULL && (node == NULL || strcmp(node, "0.0.0.0") == 0 || strcmp(node, "::") == 0)) {
        struct addrinfo v4;
        if (hints != NULL) v4 = *hints; else memset(&v4, 0, sizeof(v4));
        v4.ai_family = AF_INET;
        return real(node == NULL ? NULL : "0.0.0.0", service, &v4, res);
    }
    if (node != NULL && pod_ip != NULL && strcasecmp(node, "localhost") == 0) {
        return real(pod_ip, service, hints, res);
    }
    char ip[64];
    if (node != NULL && cluster_lookup(node, ip, sizeof(ip))) {
        struct addrinfo v4;
        if (hints != NULL) v4 = *hints; else memset(&v4, 0, sizeof(v4));
        if (v4.ai_family == AF_INET6) return EAI_ADDRFAMILY;
        v4.ai_family = AF_INET;
        return real(ip, service, &v4, res);
    }
    return real(node, service, hints, res);
}

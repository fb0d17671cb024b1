/*
 * sim_nl.c - links, addresses and routes in a world's namespaces, through
 * libnl-route-3 sockets bound to those namespaces.
 *
 * A netlink socket belongs to the network namespace it was created in, so
 * sim_nl_open() enters the target netns only for the socket() call; every
 * later request acts there, and the process itself stays where it was.
 */
#include <errno.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

static int nl_err(const char *what, const char *obj, int err)
{
	fprintf(stderr, "egress-sim: %s %s: %s\n", what, obj, nl_geterror(err));
	return -1;
}

struct open_arg {
	struct nl_sock *sk;
};

static int open_here(void *arg)
{
	struct open_arg *a = arg;
	int err;

	a->sk = nl_socket_alloc();
	if (!a->sk)
		return -1;
	err = nl_connect(a->sk, NETLINK_ROUTE);
	if (err < 0) {
		nl_socket_free(a->sk);
		a->sk = NULL;
		return nl_err("netlink", "connect", err);
	}
	return 0;
}

struct nl_sock *sim_nl_open(int nsfd)
{
	struct open_arg a = { NULL };

	if (sim_in_netns(nsfd, open_here, &a) < 0)
		return NULL;
	return a.sk;
}

void sim_nl_close(struct nl_sock *sk)
{
	if (sk)
		nl_socket_free(sk);
}

static int get_link(struct nl_sock *sk, const char *ifname,
		    struct rtnl_link **out)
{
	int err = rtnl_link_get_kernel(sk, 0, ifname, out);

	if (err < 0)
		return nl_err("no link", ifname, err);
	return 0;
}

int sim_nl_link_up(struct nl_sock *sk, const char *ifname)
{
	struct rtnl_link *link, *change;
	int err;

	if (get_link(sk, ifname, &link) < 0)
		return -1;
	change = rtnl_link_alloc();
	rtnl_link_set_flags(change, IFF_UP);
	err = rtnl_link_change(sk, link, change, 0);
	rtnl_link_put(change);
	rtnl_link_put(link);
	return err < 0 ? nl_err("cannot bring up", ifname, err) : 0;
}

int sim_nl_bridge_add(struct nl_sock *sk, const char *ifname)
{
	int err = rtnl_link_bridge_add(sk, ifname);

	return err < 0 ? nl_err("cannot create bridge", ifname, err) : 0;
}

int sim_nl_veth_add(struct nl_sock *sk, const char *name, const char *peer,
		    int peer_nsfd)
{
	struct rtnl_link *link = rtnl_link_veth_alloc(), *p;
	int err;

	if (!link)
		return nl_err("cannot allocate veth", name, -NLE_NOMEM);
	rtnl_link_set_name(link, name);
	p = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(p, peer);
	rtnl_link_set_ns_fd(p, peer_nsfd);
	err = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(p);
	rtnl_link_veth_release(link);
	return err < 0 ? nl_err("cannot create veth", name, err) : 0;
}

int sim_nl_enslave(struct nl_sock *sk, const char *master, const char *slave)
{
	struct rtnl_link *m, *s;
	int err;

	if (get_link(sk, master, &m) < 0)
		return -1;
	if (get_link(sk, slave, &s) < 0) {
		rtnl_link_put(m);
		return -1;
	}
	err = rtnl_link_enslave(sk, m, s);
	rtnl_link_put(m);
	rtnl_link_put(s);
	return err < 0 ? nl_err("cannot enslave", slave, err) : 0;
}

int sim_nl_addr_add(struct nl_sock *sk, const char *ifname, const char *cidr)
{
	struct rtnl_addr *addr = rtnl_addr_alloc();
	struct nl_addr *local = NULL;
	struct rtnl_link *link;
	int err;

	if (get_link(sk, ifname, &link) < 0) {
		rtnl_addr_put(addr);
		return -1;
	}
	err = nl_addr_parse(cidr, AF_INET, &local);
	if (err == 0) {
		rtnl_addr_set_ifindex(addr, rtnl_link_get_ifindex(link));
		err = rtnl_addr_set_local(addr, local);
	}
	if (err == 0)
		err = rtnl_addr_add(sk, addr, 0);
	nl_addr_put(local);
	rtnl_addr_put(addr);
	rtnl_link_put(link);
	return err < 0 ? nl_err("cannot add address", cidr, err) : 0;
}

int sim_nl_route_add(struct nl_sock *sk, const char *dst, const char *gw)
{
	struct rtnl_route *route = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *d = NULL, *g = NULL;
	int err;

	err = nl_addr_parse(strcmp(dst, "default") == 0 ? "0.0.0.0/0" : dst,
			    AF_INET, &d);
	if (err == 0)
		err = nl_addr_parse(gw, AF_INET, &g);
	if (err == 0) {
		rtnl_route_set_family(route, AF_INET);
		rtnl_route_set_dst(route, d);
		rtnl_route_nh_set_gateway(nh, g);
		rtnl_route_add_nexthop(route, nh);
		nh = NULL; /* the route owns it now */
		err = rtnl_route_add(sk, route, NLM_F_CREATE | NLM_F_EXCL);
	}
	if (nh)
		rtnl_route_nh_free(nh);
	nl_addr_put(d);
	nl_addr_put(g);
	rtnl_route_put(route);
	return err < 0 ? nl_err("cannot add route to", dst, err) : 0;
}

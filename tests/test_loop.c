/*
 * test_loop - rf_loop hands out timer ids: two modules on one loop each get
 * their own timer, arming one never moves or replaces the other, both fire,
 * a timer given back is refused by its stale id (also once its slot serves
 * another owner), and a full table says so instead of sharing a slot.
 */
#include "rf_loop.h"
#include "rf_test.h"

struct mod {
	int timer;
	int fired;
};

static void on_fire(rf_loop *l, void *arg)
{
	(void)l;
	((struct mod *)arg)->fired++;
}

static void run_until(rf_loop *l, struct mod *a, struct mod *b, int want_a, int want_b)
{
	uint64_t end = rf_loop_now_ms() + 30000; /* generous: a loaded host */
	while ((a->fired < want_a || b->fired < want_b) && rf_loop_now_ms() < end)
		CHECK_EQ(rf_loop_run_once(l, 50), 0);
}

int main(void)
{
	rf_loop *l;
	int rc = rf_loop_new(&l);
	if (rc == -ENOSYS || rc == -EPERM) {
		printf("test_loop: io_uring unavailable (%d): skipped\n", rc);
		return RF_T_SKIP;
	}
	CHECK_EQ(rc, 0);

	/* Two modules, as rf_http and rf_prom: distinct ids from the loop. */
	struct mod a = {0}, b = {0};
	a.timer = rf_loop_timer_new(l, on_fire, &a);
	b.timer = rf_loop_timer_new(l, on_fire, &b);
	CHECK(a.timer >= 0 && b.timer >= 0);
	CHECK(a.timer != b.timer);

	/* Arming both and re-arming one: each fires once, for its own owner. */
	CHECK_EQ(rf_loop_timer_set(l, a.timer, 1), 0);
	CHECK_EQ(rf_loop_timer_set(l, b.timer, 1), 0);
	CHECK_EQ(rf_loop_timer_set(l, a.timer, 2), 0);
	run_until(l, &a, &b, 1, 1);
	CHECK_EQ(a.fired, 1);
	CHECK_EQ(b.fired, 1);

	/* Disarming one leaves the other armed. */
	CHECK_EQ(rf_loop_timer_set(l, a.timer, 1), 0);
	CHECK_EQ(rf_loop_timer_set(l, b.timer, 1), 0);
	CHECK_EQ(rf_loop_timer_set(l, a.timer, -1), 0);
	run_until(l, &a, &b, 1, 2);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(rf_loop_run_once(l, 5), 0);
	CHECK_EQ(a.fired, 1);
	CHECK_EQ(b.fired, 2);

	/* A timer given back: its id is stale, even when the slot is reused. */
	int old = a.timer;
	CHECK_EQ(rf_loop_timer_del(l, old), 0);
	CHECK_EQ(rf_loop_timer_set(l, old, 1), -ENOENT);
	CHECK_EQ(rf_loop_timer_del(l, old), -ENOENT);
	struct mod c = {0};
	c.timer = rf_loop_timer_new(l, on_fire, &c);
	CHECK(c.timer >= 0 && c.timer != old && c.timer != b.timer);
	CHECK_EQ(rf_loop_timer_set(l, old, 1), -ENOENT); /* c's timer not moved */
	CHECK_EQ(rf_loop_timer_set(l, -1, 1), -ENOENT);

	/* Exhausted: refused, never a shared slot. */
	struct mod more[RF_LOOP_TIMERS];
	int got = 2; /* b and c */
	for (int i = 0; i < RF_LOOP_TIMERS; i++) {
		more[i].fired = 0;
		more[i].timer = rf_loop_timer_new(l, on_fire, &more[i]);
		if (more[i].timer >= 0) {
			got++;
			CHECK(more[i].timer != b.timer && more[i].timer != c.timer);
		} else {
			CHECK_EQ(more[i].timer, -ENOSPC);
		}
	}
	CHECK_EQ(got, RF_LOOP_TIMERS);
	rf_loop_free(l);
	printf("test_loop: timers handed out by the loop never clash (%d slots)\n", RF_LOOP_TIMERS);
	return RF_T_PASS;
}

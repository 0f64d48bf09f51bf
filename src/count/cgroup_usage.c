#include "count/cgroup_usage.h"

#include "util/portset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_CAPACITY 64
/* A port's owner entry: the index of the first group that added it in this
 * read (valid where the port is in claimed). Groups from OWNER_GROUPS on
 * are counted through the pairs alone, and a port first added by one of
 * them has the entry NO_OWNER. One byte an entry keeps the table at 64
 * KiB: it is probed once per socket while the kernel's walk streams
 * through the cache, and its 32-bit predecessor (256 KiB) missed there. */
#define OWNER_GROUPS 255u
#define NO_OWNER 255u

struct cgroup_usage_slot {
  uint64_t id;
  uint32_t index;
  uint32_t generation; /* the slot belongs to the read of this number */
};

struct cgroup_usage_pair {
  uint64_t key; /* group index << 16 | port */
  uint32_t generation;
};

void cgroup_usage_init(cgroup_usage_t *usage) {
  memset(usage, 0, sizeof(*usage));
  usage->generation = 1;
}

void cgroup_usage_free(cgroup_usage_t *usage) {
  free(usage->groups);
  free(usage->folded);
  free(usage->slots);
  free(usage->pairs);
  free(usage->owners);
  free(usage->claimed);
  free(usage->held);
  cgroup_usage_init(usage);
}

void cgroup_usage_clear(cgroup_usage_t *usage) {
  usage->count = 0;
  usage->has_last = false;
  usage->pairs_count = 0;
  if (usage->claimed != NULL)
    portset_clear(usage->claimed);
  if (++usage->generation == 0) {
    /* After 2^32 reads an old entry could look current again. */
    if (usage->slots != NULL)
      memset(usage->slots, 0, usage->slots_capacity * sizeof(*usage->slots));
    if (usage->pairs != NULL)
      memset(usage->pairs, 0, usage->pairs_capacity * sizeof(*usage->pairs));
    usage->generation = 1;
  }
}

/* Multiply-xorshift: ids are small consecutive numbers, and the table's
 * mask takes the low bits. */
static size_t hash_u64(uint64_t value) {
  uint64_t hash = (value ^ 0x9e3779b97f4a7c15ULL) * 0xff51afd7ed558ccdULL;
  return (size_t)(hash ^ (hash >> 32));
}

static struct cgroup_usage_slot *find_slot(struct cgroup_usage_slot *slots,
                                           size_t capacity, uint32_t generation,
                                           uint64_t id) {
  size_t mask = capacity - 1;
  for (size_t i = hash_u64(id) & mask;; i = (i + 1) & mask) {
    struct cgroup_usage_slot *slot = &slots[i];
    if (slot->generation != generation || slot->id == id)
      return slot;
  }
}

static struct cgroup_usage_pair *find_pair(struct cgroup_usage_pair *pairs,
                                           size_t capacity, uint32_t generation,
                                           uint64_t key) {
  size_t mask = capacity - 1;
  for (size_t i = hash_u64(key) & mask;; i = (i + 1) & mask) {
    struct cgroup_usage_pair *pair = &pairs[i];
    if (pair->generation != generation || pair->key == key)
      return pair;
  }
}

static int grow_slots(cgroup_usage_t *usage) {
  size_t capacity =
      usage->slots_capacity ? usage->slots_capacity * 2 : INITIAL_CAPACITY;
  struct cgroup_usage_slot *slots = calloc(capacity, sizeof(*slots));
  if (slots == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < usage->count; i++) {
    struct cgroup_usage_slot *slot =
        find_slot(slots, capacity, usage->generation, usage->groups[i].id);
    *slot = (struct cgroup_usage_slot){usage->groups[i].id, (uint32_t)i,
                                       usage->generation};
  }
  free(usage->slots);
  usage->slots = slots;
  usage->slots_capacity = capacity;
  return 0;
}

static int grow_groups(cgroup_usage_t *usage) {
  size_t capacity =
      usage->groups_capacity ? usage->groups_capacity * 2 : INITIAL_CAPACITY;
  cgroup_count_t *groups = realloc(usage->groups, capacity * sizeof(*groups));
  if (groups == NULL)
    return -ENOMEM;
  usage->groups = groups;
  bool *folded = realloc(usage->folded, capacity * sizeof(*folded));
  if (folded == NULL)
    return -ENOMEM;
  usage->folded = folded;
  usage->groups_capacity = capacity;
  return 0;
}

static int grow_pairs(cgroup_usage_t *usage) {
  size_t capacity =
      usage->pairs_capacity ? usage->pairs_capacity * 2 : INITIAL_CAPACITY;
  struct cgroup_usage_pair *pairs = calloc(capacity, sizeof(*pairs));
  if (pairs == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < usage->pairs_capacity; i++) {
    const struct cgroup_usage_pair *old = &usage->pairs[i];
    if (old->generation == usage->generation)
      *find_pair(pairs, capacity, usage->generation, old->key) = *old;
  }
  free(usage->pairs);
  usage->pairs = pairs;
  usage->pairs_capacity = capacity;
  return 0;
}

/* The index of id's group in this read, created if need be; -ENOMEM. */
static long group_index(cgroup_usage_t *usage, uint64_t id) {
  if (usage->has_last && usage->last_id == id)
    return (long)usage->last_index;
  if (usage->slots_capacity > 0) {
    struct cgroup_usage_slot *slot =
        find_slot(usage->slots, usage->slots_capacity, usage->generation, id);
    if (slot->generation == usage->generation)
      return (long)slot->index;
  }
  /* Load factor at most 1/2 keeps probe runs short. */
  if (((usage->count + 1) * 2 > usage->slots_capacity &&
       grow_slots(usage) != 0) ||
      (usage->count == usage->groups_capacity && grow_groups(usage) != 0))
    return -ENOMEM;
  size_t index = usage->count++;
  usage->groups[index] = (cgroup_count_t){.id = id};
  usage->folded[index] = false;
  *find_slot(usage->slots, usage->slots_capacity, usage->generation, id) =
      (struct cgroup_usage_slot){id, (uint32_t)index, usage->generation};
  return (long)index;
}

/* Whether (group, port) is new in this read's pairs, added if so. */
static int add_pair(cgroup_usage_t *usage, size_t group, uint16_t port) {
  if ((usage->pairs_count + 1) * 2 > usage->pairs_capacity &&
      grow_pairs(usage) != 0)
    return -ENOMEM;
  uint64_t key = (uint64_t)group << 16 | port;
  struct cgroup_usage_pair *pair =
      find_pair(usage->pairs, usage->pairs_capacity, usage->generation, key);
  if (pair->generation == usage->generation)
    return 0;
  *pair = (struct cgroup_usage_pair){key, usage->generation};
  usage->pairs_count++;
  return 1;
}

int cgroup_usage_add(cgroup_usage_t *usage, uint64_t id, uint16_t port) {
  if (usage->owners == NULL) {
    /* Never cleared: an entry counts only where claimed has its port. */
    usage->owners = malloc(PORTSET_PORTS);
    usage->claimed = calloc(1, sizeof(portset_t));
    if (usage->owners == NULL || usage->claimed == NULL) {
      free(usage->owners);
      free(usage->claimed);
      usage->owners = NULL;
      usage->claimed = NULL;
      return -ENOMEM;
    }
  }
  long index = group_index(usage, id);
  if (index < 0)
    return (int)index;
  usage->last_id = id;
  usage->last_index = (size_t)index;
  usage->has_last = true;
  uint8_t *owner = &usage->owners[port];
  if (!portset_has(usage->claimed, port)) {
    portset_add(usage->claimed, port);
    if ((size_t)index < OWNER_GROUPS) {
      *owner = (uint8_t)index;
      usage->groups[index].ports++;
      return 0;
    }
    *owner = NO_OWNER;
  } else if ((size_t)index < OWNER_GROUPS && *owner == index) {
    return 0;
  }
  int added = add_pair(usage, (size_t)index, port);
  if (added < 0)
    return added;
  usage->groups[index].ports += (uint32_t)added;
  return 0;
}

size_t cgroup_usage_count(const cgroup_usage_t *usage) { return usage->count; }

const cgroup_count_t *cgroup_usage_at(const cgroup_usage_t *usage, size_t i) {
  return i < usage->count ? &usage->groups[i] : NULL;
}

static cgroup_count_t *lookup(const cgroup_usage_t *usage, uint64_t id) {
  if (usage->slots_capacity == 0)
    return NULL;
  struct cgroup_usage_slot *slot =
      find_slot(usage->slots, usage->slots_capacity, usage->generation, id);
  return slot->generation == usage->generation ? &usage->groups[slot->index]
                                               : NULL;
}

const cgroup_count_t *cgroup_usage_find(const cgroup_usage_t *usage,
                                        uint64_t id) {
  return lookup(usage, id);
}

/* Whether the port of this owner entry or pair counts for into now. */
static bool moves_into(const cgroup_usage_t *usage, size_t group, size_t into) {
  return group == into || usage->folded[group];
}

int cgroup_usage_fold(cgroup_usage_t *usage, const uint64_t *ids, size_t n,
                      uint64_t into) {
  bool any = false;
  for (size_t i = 0; i < n && !any; i++)
    any = ids[i] != into && lookup(usage, ids[i]) != NULL;
  if (!any)
    return 0;
  if (usage->held == NULL && (usage->held = malloc(sizeof(portset_t))) == NULL)
    return -ENOMEM;
  long target = group_index(usage, into);
  if (target < 0)
    return (int)target;
  for (size_t i = 0; i < n; i++) {
    cgroup_count_t *group = ids[i] != into ? lookup(usage, ids[i]) : NULL;
    if (group != NULL)
      usage->folded[group - usage->groups] = true;
  }

  portset_t *held = usage->held;
  portset_clear(held);
  /* The claimed ports only: a few hundred where the table has 65,536. */
  for (size_t w = 0; w < PORTSET_WORDS; w++) {
    for (uint64_t bits = usage->claimed->words[w]; bits != 0;
         bits &= bits - 1) {
      size_t port = w * 64 + (size_t)__builtin_ctzll(bits);
      uint8_t owner = usage->owners[port];
      if (owner != NO_OWNER && moves_into(usage, owner, (size_t)target))
        portset_add(held, (uint16_t)port);
    }
  }
  for (size_t i = 0; i < usage->pairs_capacity; i++) {
    const struct cgroup_usage_pair *pair = &usage->pairs[i];
    if (pair->generation == usage->generation &&
        moves_into(usage, (size_t)(pair->key >> 16), (size_t)target))
      portset_add(held, (uint16_t)(pair->key & 0xffffu));
  }
  usage->groups[target].ports = portset_count(held);
  for (size_t i = 0; i < usage->count; i++)
    if (usage->folded[i])
      usage->groups[i].ports = 0;
  return 0;
}

static bool busier(const cgroup_count_t *a, const cgroup_count_t *b) {
  if (a->ports != b->ports)
    return a->ports > b->ports;
  return a->id < b->id;
}

/* Insertion into a sorted array of n, as destinations_top: for the small n
 * (TopCgroups) this is used with. */
size_t cgroup_usage_top(cgroup_usage_t *usage, cgroup_count_t *top, size_t n) {
  size_t found = 0;
  if (n == 0)
    return 0;
  /* Chosen anew: a group of an earlier call in this read may be out now. */
  for (size_t i = 0; i < usage->count; i++)
    usage->groups[i].in_top = false;
  for (size_t i = 0; i < usage->count; i++) {
    const cgroup_count_t *entry = &usage->groups[i];
    if (entry->ports == 0 || (found == n && !busier(entry, &top[n - 1])))
      continue;
    size_t at = found < n ? found++ : n - 1;
    while (at > 0 && busier(entry, &top[at - 1])) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = *entry;
  }
  for (size_t i = 0; i < found; i++) {
    lookup(usage, top[i].id)->in_top = true;
    top[i].in_top = true;
  }
  return found;
}

/**
 * The whisper suggester: a small, deterministic, rule-based list of reply suggestions for staff.
 * No external AI — every suggestion names the rule that produced it, and the UI labels whispers
 * as automatic so nobody mistakes them for a colleague's advice.
 */

export interface Suggestion {
  rule: string;
  body: string;
}

interface Rule {
  name: string;
  /** Every group must match at least one of its words (word-start match, case-insensitive). */
  all: readonly (readonly string[])[];
  reply: string;
}

const RULES: readonly Rule[] = [
  {
    name: 'armyworm',
    all: [['armyworm', 'worm', 'caterpillar', 'viwavi']],
    reply:
      'Fall armyworm: scout early morning, look for sawdust-like frass in the funnel. Hand-pick egg masses; if over 20% of plants are hit, spray an approved product into the funnel and tell us which one you have.',
  },
  {
    name: 'maize-yellowing',
    all: [
      ['maize', 'corn', 'mahindi'],
      ['yellow', 'pale', 'yellowing'],
    ],
    reply:
      'Yellowing maize leaves often mean nitrogen deficiency. Top-dress with CAN or urea (about one bottle-top per plant) when the soil is moist, and send a photo of the lower leaves so we can confirm.',
  },
  {
    name: 'fertilizer',
    all: [['fertilizer', 'fertiliser', 'dap', 'npk', 'urea', 'manure']],
    reply:
      'For planting use DAP or NPK in the hole, mixed with soil; top-dress with CAN at knee height. Subsidised fertilizer is available through the ward agricultural office with your farmer ID.',
  },
  {
    name: 'animal-health',
    all: [['cow', 'cows', 'cattle', 'goat', 'goats', 'calf', 'milk', 'mastitis', 'tick', 'ticks']],
    reply:
      'For sick animals: isolate the animal, note temperature, appetite and milk changes, and we will connect you with the ward veterinary officer. Please share your location and a phone number.',
  },
  {
    name: 'market-price',
    all: [['price', 'prices', 'market', 'sell', 'buyer', 'buyers', 'bei']],
    reply:
      "This week's market prices are posted at the ward office and on the county SMS service. Tell us the produce and quantity and we will share buyer contacts registered in your district.",
  },
  {
    name: 'weather-planting',
    all: [['rain', 'rains', 'weather', 'planting', 'plant', 'drought', 'dry']],
    reply:
      'Plant when the soil is moist to a fist depth after the onset of rains. The county forecast is updated weekly; drought-tolerant varieties are recommended for the lower wards.',
  },
  {
    name: 'seed',
    all: [['seed', 'seeds', 'variety', 'varieties', 'certified']],
    reply:
      'Buy only certified seed (look for the KEPHIS label and lot number). Tell us your altitude and rainfall and we will recommend suitable varieties.',
  },
  {
    name: 'thanks',
    all: [['thanks', 'thank', 'asante']],
    reply: 'You are welcome! Is there anything else we can help with? If not, we will mark this request as resolved.',
  },
];

const FALLBACK: Suggestion = {
  rule: 'acknowledge',
  body: 'Thank you for writing to the farmers helpdesk. An extension officer is looking at your message; could you share your crop or animal, and how long you have seen the problem?',
};

const WORD = /[\p{L}\p{N}]+/gu;

/**
 * Up to `limit` suggestions for a customer message, most specific rule first. Always at least one
 * (an acknowledgement) so the whisper panel is never empty for a new message.
 *
 * @example
 *   suggestReplies('My maize leaves are turning yellow')[0].rule // 'maize-yellowing'
 */
export function suggestReplies(text: string, limit = 2): Suggestion[] {
  const words = new Set((text.toLowerCase().match(WORD) ?? []).map((w) => w));
  const matches = (word: string) => {
    for (const w of words) if (w.startsWith(word)) return true;
    return false;
  };
  const out: Suggestion[] = [];
  for (const rule of RULES) {
    if (out.length >= limit) break;
    if (rule.all.every((group) => group.some(matches))) out.push({ rule: rule.name, body: rule.reply });
  }
  return out.length > 0 ? out : [FALLBACK];
}

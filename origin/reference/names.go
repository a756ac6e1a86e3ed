package reference

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// The word lists of the synthetic world. People come from many cultures, with the accents real
// teams have, because weft's autocomplete must match "jose" to "José" and "lukasz" to "Łukasz".
// Within a culture every given name and every family name folds (see fold) to a distinct ASCII
// form, and family names fold distinctly across cultures: that makes every (given, family) pair
// a distinct handle, which is what keeps handles unique without a map (see world.go).

// rawCulture is one naming tradition. familyFirst cultures write the family name first in
// real_name ("Nguyễn Văn An"); handles are always given.family ("an.nguyen"), from the last word
// of the given name.
type rawCulture struct {
	given, family []string
	familyFirst   bool
	tz            []string
}

var rawCultures = []rawCulture{
	{ // Spanish
		given:  []string{"José", "María", "Lucía", "Álvaro", "Sofía", "Martín", "Inés", "Javier", "Carmen", "Diego", "Elena", "Raúl", "Paula", "Sergio", "Íñigo", "Begoña", "Andrés", "Marta", "Pablo", "Ramón"},
		family: []string{"Núñez", "García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz", "Hernández", "Jiménez", "Muñoz", "Álvarez", "Romero", "Navarro", "Torres", "Domínguez", "Vázquez", "Ortega"},
		tz:     []string{"Europe/Madrid", "America/Mexico_City", "America/Bogota", "America/Argentina/Buenos_Aires", "America/Lima"},
	},
	{ // Portuguese
		given:  []string{"João", "Ana", "Luísa", "Gonçalo", "Tiago", "Beatriz", "Rafael", "Mariana", "Inês", "Caio", "Letícia", "Vitória", "Thiago", "Camila", "Joaquim", "Débora"},
		family: []string{"Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Rodrigues", "Almeida", "Nascimento", "Araújo", "Gonçalves", "Conceição", "Ribeiro", "Carvalho", "Magalhães", "Barbosa"},
		tz:     []string{"America/Sao_Paulo", "Europe/Lisbon", "America/Recife"},
	},
	{ // French
		given:  []string{"Chloé", "Léa", "Théo", "Hélène", "François", "Amélie", "Jérôme", "Benoît", "Céline", "Gaëlle", "Noël", "Étienne", "Maëlys", "Clément", "Océane", "Loïc"},
		family: []string{"Lefèvre", "Dubois", "Moreau", "Laurent", "Girard", "Rousseau", "Fontaine", "Chevalier", "Gauthier", "Mercier", "Lefebvre", "Boucher", "Garnier", "Faure", "Rivière", "Lemaître", "Bérenger", "Pâris"},
		tz:     []string{"Europe/Paris", "America/Toronto", "Europe/Brussels", "Europe/Luxembourg"},
	},
	{ // German
		given:  []string{"Jürgen", "Jörg", "Günter", "Lukas", "Anna", "Sophie", "Käthe", "Felix", "Lena", "Maximilian", "Hannah", "Uwe", "Ursula", "Tobias", "Jana", "Matthias", "Björn", "Sören"},
		family: []string{"Müller", "Schröder", "Schäfer", "Weiß", "Köhler", "Fischer", "Wagner", "Becker", "Hoffmann", "Krüger", "Vogel", "Zimmermann", "Braun", "Hartmann", "Lange", "Groß", "Jäger", "Böhm"},
		tz:     []string{"Europe/Berlin", "Europe/Vienna", "Europe/Zurich"},
	},
	{ // Nordic
		given:  []string{"Søren", "Åsa", "Bjørn", "Ingrid", "Sigríður", "Magnús", "Linnéa", "Mikael", "Freja", "Oskar", "Astrid", "Elin", "Henrik", "Kristín", "Jóhann", "Eero"},
		family: []string{"Østergaard", "Andersen", "Johansson", "Nyström", "Lindqvist", "Bergström", "Håkansson", "Sørensen", "Jónsdóttir", "Ólafsson", "Virtanen", "Mäkinen", "Korhonen", "Dahl", "Halvorsen", "Løvås"},
		tz:     []string{"Europe/Copenhagen", "Europe/Stockholm", "Europe/Oslo", "Europe/Helsinki", "Atlantic/Reykjavik"},
	},
	{ // Polish, Czech, Slovak
		given:  []string{"Łukasz", "Zoë", "Agnieszka", "Wojciech", "Małgorzata", "Paweł", "Katarzyna", "Michał", "Zuzana", "Jiří", "Tomáš", "Petra", "Kryštof", "Ewa", "Grzegorz", "Ondřej"},
		family: []string{"Wójcik", "Kowalski", "Nowak", "Dvořák", "Novák", "Svoboda", "Kowalczyk", "Lewandowski", "Zieliński", "Szymański", "Krejčí", "Procházka", "Černý", "Wiśniewski", "Dąbrowski", "Kučera"},
		tz:     []string{"Europe/Warsaw", "Europe/Prague", "Europe/Bratislava"},
	},
	{ // Irish, British, American
		given:  []string{"Siobhán", "Aoife", "Niamh", "Seán", "Ciarán", "Oisín", "Emily", "James", "Olivia", "Jack", "Grace", "Liam", "Charlotte", "Noah", "Ava", "Ethan", "Madison", "Tyler"},
		family: []string{"O'Brien", "Murphy", "Ó Súilleabháin", "Kelly", "Byrne", "Smith", "Johnson", "Williams", "Brown", "Taylor", "Walsh", "McCarthy", "Anderson", "Clarke", "Bennett", "Hughes", "Davies", "Robinson"},
		tz:     []string{"Europe/Dublin", "Europe/London", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Australia/Sydney"},
	},
	{ // Italian
		given:  []string{"Giulia", "Francesca", "Niccolò", "Lorenzo", "Chiara", "Matteo", "Alessandro", "Martina", "Federica", "Giuseppe", "Sara", "Andrea", "Beatrice", "Davide", "Ilaria", "Gianluca"},
		family: []string{"Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Lombardi", "Esposito", "Barbieri", "Fabbri"},
		tz:     []string{"Europe/Rome"},
	},
	{ // Turkish
		given:  []string{"Ayşe", "Mehmet", "Gökhan", "Şebnem", "Elif", "Emre", "Zeynep", "Burak", "Özlem", "İlker", "Deniz", "Can", "Merve", "Oğuz", "Selin", "Çağla"},
		family: []string{"Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın", "Arslan", "Doğan", "Kılıç", "Koç", "Kurt", "Özdemir", "Erdoğan", "Güneş"},
		tz:     []string{"Europe/Istanbul"},
	},
	{ // Vietnamese
		given:       []string{"Văn An", "Thị Mai", "Minh Anh", "Mạnh Hùng", "Thị Lan", "Tiến Dũng", "Thu Hương", "Anh Tuấn", "Thùy Linh", "Thanh Phương", "Đăng Quang", "Phương Thảo", "Minh Đức", "Thị Hoa", "Hoàng Long", "Bảo Ngọc"},
		family:      []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"},
		familyFirst: true,
		tz:          []string{"Asia/Ho_Chi_Minh", "Asia/Bangkok"},
	},
	{ // Chinese (given name first, as many write it at work)
		given:  []string{"Wei", "Fang", "Jing", "Lei", "Min", "Yan", "Jie", "Hui", "Xin", "Yu", "Hao", "Ying", "Tao", "Xiaoming", "Meiling", "Zhiwei"},
		family: []string{"Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "Lin", "Gao"},
		tz:     []string{"Asia/Shanghai", "Asia/Taipei", "Asia/Singapore", "Asia/Hong_Kong"},
	},
	{ // Japanese (given name first)
		given:  []string{"Yuki", "Haruto", "Sakura", "Ren", "Aoi", "Hiroshi", "Yui", "Sōta", "Kenji", "Akari", "Daiki", "Emi", "Takumi", "Mei", "Shōhei", "Naoko"},
		family: []string{"Satō", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Itō", "Yamamoto", "Nakamura", "Kobayashi", "Katō", "Yoshida", "Yamada", "Sasaki", "Matsumoto", "Inoue", "Kimura"},
		tz:     []string{"Asia/Tokyo"},
	},
	{ // Korean
		given:       []string{"Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun", "Do-yun", "Su-bin", "Ji-woo", "Ye-jin", "Hyun-woo", "Eun-ji", "Joon-ho", "Soo-ah", "Tae-yang", "Da-eun"},
		family:      []string{"Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han", "Shin", "Seo", "Kwon"},
		familyFirst: true,
		tz:          []string{"Asia/Seoul"},
	},
	{ // Hungarian
		given:       []string{"Péter", "Zsófia", "Gábor", "Ágnes", "László", "Katalin", "Zoltán", "Eszter", "Bence", "Réka", "Dávid", "Anikó", "Levente", "Csilla"},
		family:      []string{"Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Kiss", "Molnár", "Németh", "Farkas", "Balogh", "Papp", "Takács", "Juhász"},
		familyFirst: true,
		tz:          []string{"Europe/Budapest"},
	},
	{ // Indian
		given:  []string{"Priya", "Arjun", "Ananya", "Rohan", "Aditi", "Vikram", "Kavya", "Rahul", "Sneha", "Aarav", "Ishaan", "Meera", "Siddharth", "Divya", "Karthik", "Lakshmi"},
		family: []string{"Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Singh", "Kumar", "Banerjee", "Mukherjee", "Rao", "Menon", "Desai", "Joshi", "Chatterjee", "Pillai"},
		tz:     []string{"Asia/Kolkata"},
	},
	{ // Arabic
		given:  []string{"Omar", "Layla", "Yusuf", "Fatima", "Karim", "Nour", "Hassan", "Amira", "Tariq", "Yasmin", "Khalid", "Rania", "Samir", "Huda", "Ziad", "Salma"},
		family: []string{"Haddad", "Khoury", "Mansour", "Nasser", "Saleh", "Hamdan", "Aziz", "Farouk", "Rahman", "Sabbagh", "Qasim", "Darwish", "Issa", "Bakr", "El-Amin", "Shalabi"},
		tz:     []string{"Asia/Dubai", "Asia/Beirut", "Africa/Cairo", "Asia/Riyadh", "Asia/Amman"},
	},
	{ // West and East African
		given:  []string{"Chidi", "Ngozi", "Oluwaseun", "Adaeze", "Kwame", "Ama", "Wanjiru", "Tendai", "Chinonso", "Folake", "Emeka", "Abena", "Kofi", "Nia", "Babajide", "Zawadi"},
		family: []string{"Okafor", "Adeyemi", "Mensah", "Okonkwo", "Eze", "Boateng", "Kamau", "Otieno", "Mwangi", "Nwosu", "Balogun", "Asante", "Oyelaran", "Achebe", "Odhiambo", "Owusu"},
		tz:     []string{"Africa/Lagos", "Africa/Accra", "Africa/Nairobi", "Africa/Johannesburg"},
	},
	{ // Dutch
		given:  []string{"Daan", "Sanne", "Sem", "Fleur", "Bram", "Anouk", "Lieke", "Joris", "Femke", "Thijs", "Maartje", "Ruud", "Eline", "Wouter"},
		family: []string{"de Vries", "van den Berg", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Jong", "Mulder", "Bos", "van Dijk", "Dekker", "Vermeulen", "Hendriks"},
		tz:     []string{"Europe/Amsterdam"},
	},
}

// nickNames are display names people pick that are not their given name.
var nickNames = []string{"Alex", "Sam", "Kiki", "Teddy", "Bex", "Jay", "Mo", "Nico", "Pip", "Zee",
	"Dani", "Lu", "Benji", "Coco", "Rafa", "Suzy", "Tom", "Vik", "Ollie", "Juju", "Manu", "Frankie",
	"Gigi", "Kat", "Max", "Ness", "Rocky", "Toto", "Wiz", "Yoyo"}

var jobTitles = []string{"Software Engineer", "Senior Software Engineer", "Staff Engineer",
	"Engineering Manager", "Product Manager", "Senior Product Designer", "UX Researcher",
	"Data Scientist", "Data Engineer", "Site Reliability Engineer", "Security Engineer",
	"Account Executive", "Sales Development Rep", "Customer Success Manager", "Support Engineer",
	"Technical Writer", "Recruiter", "People Partner", "Financial Analyst", "Controller",
	"Legal Counsel", "Office Manager", "Marketing Manager", "Content Strategist",
	"Head of Growth", "VP Engineering", "Director of Sales", "Chief of Staff", "QA Engineer",
	"iOS Engineer", "Android Engineer", "Solutions Architect", "Developer Advocate",
	"Program Manager", "IT Administrator", "Business Analyst", "Intern", "Designer",
	"Ingénieure logicielle", "Entwicklerin", "Desarrollador Senior", "Product Owner"}

// botNames are integrations. A bot's handle has no dot, so it never meets a person's handle.
var botNames = []string{"deploy-bot", "github", "jira", "pagerduty", "standup-bot", "google-calendar",
	"sentry", "datadog", "circleci", "zendesk", "salesforce", "giphy", "polly", "donut", "lunch-bot",
	"release-bot", "oncall-bot", "grafana", "statuspage", "linear", "figma", "notion", "zoom",
	"greenhouse", "workday"}

var botTitles = []string{"Ships builds to production", "Posts pull requests and reviews",
	"Tickets and sprint updates", "Pages the on-call engineer", "Collects daily standups",
	"Meeting reminders", "Error reports", "Metrics and alerts", "Build notifications", ""}

var teamAdjectives = []string{"Blue", "Quiet", "Bright", "Northern", "Silver", "Swift", "Golden",
	"Hidden", "Iron", "Lucky", "Crimson", "Brave", "Clever", "Distant", "Emerald", "Frosty", "Gentle",
	"Happy", "Jade", "Kind", "Little", "Mighty", "Noble", "Open", "Purple", "Rapid", "Solar", "Tidal",
	"Urban", "Vivid", "Wild", "Young", "Zesty", "Amber", "Cosmic", "Dusty", "Electric", "Fuzzy",
	"Granite", "Humble"}

var teamNouns = []string{"Falcon", "Harbor", "Forge", "Otter", "Meadow", "Summit", "Lantern",
	"Compass", "Orchard", "Beacon", "Canyon", "Delta", "Ember", "Fjord", "Grove", "Heron", "Island",
	"Juniper", "Kettle", "Lagoon", "Maple", "Nebula", "Oak", "Pebble", "Quill", "River", "Sparrow",
	"Thistle", "Umbrella", "Valley", "Willow", "Yak", "Zebra", "Anchor", "Badger", "Cactus",
	"Dolphin", "Engine", "Feather", "Glacier"}

var teamKinds = []string{"", "Labs", "Inc.", "Studio", "Group", "Collective", "Systems", "& Co.",
	"GmbH", "Technologies"}

// Words that channel names are built from.
var (
	engComponents = []string{"backend", "frontend", "infra", "platform", "mobile", "ios", "android",
		"data", "ml", "security", "sre", "api", "payments", "search", "growth", "billing", "identity",
		"storage", "networking", "observability", "release", "qa", "devex", "design-systems", "web",
		"desktop", "notifications", "messaging", "perf", "db"}
	codenames = []string{"aurora", "borealis", "cascade", "dynamo", "ember", "falcon", "granite",
		"horizon", "ion", "juniper", "kestrel", "lumen", "meridian", "nebula", "obsidian", "phoenix",
		"quartz", "raven", "sierra", "tundra", "umbra", "vortex", "willow", "xenon", "yukon", "zephyr",
		"atlas", "beacon", "comet", "eclipse", "fjord", "glacier", "halcyon", "indigo", "jasper",
		"kodiak", "lynx", "monsoon", "nimbus", "orion", "pulsar", "quasar", "redwood", "sequoia",
		"tempest", "vega", "wren", "zenith", "mosaic", "lighthouse"}
	departments = []string{"sales", "marketing", "support", "finance", "legal", "hr", "people",
		"recruiting", "design", "product", "ops", "security", "data", "partnerships", "success",
		"research", "it", "facilities", "comms", "procurement"}
	regions    = []string{"emea", "amer", "apac", "latam", "nordics", "dach", "uk", "anz", "japan", "india"}
	helpTopics = []string{"it", "hr", "benefits", "payroll", "expenses", "travel", "laptop", "vpn",
		"accounts", "security", "facilities", "legal", "design", "data", "analytics", "oncall",
		"deploys", "ci", "k8s", "docs", "okta", "printing", "onboarding", "tools", "finance"}
	announceTopics = []string{"q1", "q2", "q3", "q4", "hq", "engineering", "product", "sales",
		"company", "releases", "security", "offsites", "benefits"}
	hobbies = []string{"cats", "dogs", "running", "cycling", "books", "cooking", "coffee", "music",
		"gaming", "photography", "hiking", "climbing", "chess", "gardening", "movies", "football",
		"basketball", "yoga", "boardgames", "travel", "parents", "plants", "memes", "baking",
		"knitting", "anime", "podcasts", "tea", "birding", "surfing"}
	cities = []string{"berlin", "paris", "london", "nyc", "sf", "sao-paulo", "tokyo", "seoul",
		"bangalore", "dublin", "madrid", "warsaw", "prague", "lisbon", "toronto", "austin", "sydney",
		"singapore", "nairobi", "lagos", "istanbul", "amsterdam", "stockholm", "oslo", "copenhagen",
		"helsinki", "budapest", "mexico-city", "buenos-aires", "hanoi"}
	companies = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
		"cyberdyne", "soylent", "tyrell", "aperture", "massive-dynamic", "vandelay", "pied-piper",
		"dunder-mifflin", "oscorp", "nakatomi", "monarch", "gringotts", "prestige", "sirius",
		"virtucon", "gekko", "oceanic", "weyland", "blue-sun", "duff", "krusty", "planet-express",
		"bluth", "sterling-cooper", "wernham-hogg", "los-pollos", "abstergo", "black-mesa",
		"contoso", "fabrikam", "northwind", "tailspin"}
	environments = []string{"prod", "staging", "dev"}
)

// channelFamily is one kind of channel name: prefix followed by one word of each list, joined by
// "-", with a purpose written for that kind. No list word ends in "-<digits>", so a round suffix
// ("proj-aurora-2", see world.go) never produces another family's name.
type channelFamily struct {
	prefix  string
	lists   [][]string
	purpose string // fmt pattern over the words joined by " "
}

var channelFamilies = []channelFamily{
	{"eng", [][]string{engComponents}, "Engineering discussion for %s: design, reviews and on-call handoffs."},
	{"proj", [][]string{codenames}, "Project %s: planning, status updates and decisions."},
	{"proj", [][]string{codenames, engComponents}, "Project %s: the working channel of one workstream."},
	{"team", [][]string{departments}, "The %s team's home channel."},
	{"team", [][]string{departments, regions}, "The %s team, regional coordination."},
	{"help", [][]string{helpTopics}, "Ask anything about %s. Search before you ask, and thread your replies."},
	{"ask", [][]string{helpTopics}, "Questions and answers about %s."},
	{"announce", [][]string{announceTopics}, "Announcements: %s. Posting is limited; discuss in threads."},
	{"social", [][]string{hobbies}, "For people who love %s."},
	{"loc", [][]string{cities}, "Everyone based in or near %s: office news, meetups, lunch."},
	{"cust", [][]string{companies}, "Account channel for %s."},
	{"ext", [][]string{companies}, "Shared channel with %s."},
	{"oncall", [][]string{engComponents}, "On-call rotation and handoffs for %s."},
	{"alerts", [][]string{engComponents, environments}, "Automated alerts: %s."},
	{"feedback", [][]string{engComponents}, "Feedback on %s from customers and colleagues."},
	{"standup", [][]string{engComponents}, "Async standups for %s."},
	{"deals", [][]string{regions, companies}, "Deal room: %s."},
}

var channelTopics = []string{"Standup at 10:00, notes in the doc", "Release train leaves Thursday :train:",
	"Be kind. Search before you ask.", "Current focus: stability → performance → features",
	"Weekly sync Tuesdays 15:00 CET", "Quarterly planning in progress :memo:",
	"Incident? Page #oncall first", "Ship it :rocket:", "Docs: see the pinned messages",
	"Pas de question bête", "Montag: Retro, Freitag: Demo", "Reunión semanal los lunes",
	"今週のリリース: 木曜日", "Code freeze starts Friday", "Office hours Wed 14:00–15:00", ""}

var messageTemplates = []string{
	"Has anyone seen the latest numbers for %s?",
	"Deploying %s to staging now :rocket:",
	"Can someone review my PR for %s?",
	"Lunch at 12:30? :ramen:",
	"The %s dashboard looks off since this morning",
	"Thanks for the help with %s!",
	"Reminder: the %s sync moved to 3pm",
	"I'll be OOO tomorrow, ping me on %s if it's urgent",
	"+1", "LGTM :+1:",
	"Ça marche, je m'en occupe pour %s.",
	"¿Alguien sabe dónde está el doc de %s?",
	"Danke! Ich schaue mir %s gleich an.",
	"Tack, %s ser bra ut!",
	"了解です、%s を確認します。",
	"Rolling back %s, error rate doubled",
	"Retro notes for %s are in the doc",
	"Who owns %s these days?",
	"Heads up: %s maintenance window tonight 22:00 UTC",
	"Nice work on %s everyone :tada:",
}

// fold is the ASCII form of a name for handles: lower case, accents removed, letters that do
// not decompose spelled out, and anything but letters and digits dropped.
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(unicode.ToLower(r))
		default:
			if sp, ok := foldSpecial[unicode.ToLower(r)]; ok {
				b.WriteString(sp)
			}
		}
	}
	return b.String()
}

var foldSpecial = map[rune]string{'ø': "o", 'ł': "l", 'đ': "d", 'æ': "ae", 'ß': "ss", 'œ': "oe",
	'ı': "i", 'þ': "th", 'ð': "d", 'å': "a"}

// nameEntry is a name with its folded form, computed once so generating a user folds nothing.
type nameEntry struct{ text, fold string }

type culture struct {
	given, family []nameEntry
	familyFirst   bool
	tz            []string
	pairs         int // len(given) * len(family)
}

// cultures and totalPairs are derived once from rawCultures.
var cultures, totalPairs = buildCultures()

func buildCultures() ([]culture, int) {
	out := make([]culture, len(rawCultures))
	total := 0
	entries := func(names []string, lastWord bool) []nameEntry {
		es := make([]nameEntry, len(names))
		for i, n := range names {
			f := n
			if lastWord {
				f = n[strings.LastIndexByte(n, ' ')+1:]
			}
			es[i] = nameEntry{text: n, fold: fold(f)}
		}
		return es
	}
	for i, rc := range rawCultures {
		c := culture{given: entries(rc.given, true), family: entries(rc.family, false),
			familyFirst: rc.familyFirst, tz: rc.tz}
		c.pairs = len(c.given) * len(c.family)
		total += c.pairs
		out[i] = c
	}
	return out, total
}

// channelNameCount is the number of distinct base channel names the families produce.
var channelNameCount = func() int {
	n := 0
	for _, f := range channelFamilies {
		n += familySize(f)
	}
	return n
}()

func familySize(f channelFamily) int {
	n := 1
	for _, l := range f.lists {
		n *= len(l)
	}
	return n
}

// channelName returns base channel name p (0 <= p < channelNameCount) and its purpose.
func channelName(p int) (name, purpose string) {
	for _, f := range channelFamilies {
		size := familySize(f)
		if p >= size {
			p -= size
			continue
		}
		words := make([]string, len(f.lists))
		for i := len(f.lists) - 1; i >= 0; i-- {
			words[i] = f.lists[i][p%len(f.lists[i])]
			p /= len(f.lists[i])
		}
		return f.prefix + "-" + strings.Join(words, "-"), fmt.Sprintf(f.purpose, strings.Join(words, " "))
	}
	panic("origin: channel name index out of range")
}
